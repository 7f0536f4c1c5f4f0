"""A fault-injecting HTTPS reverse proxy in front of the real registry.

It forwards every request unchanged (method, path, headers including Host and
Authorization, body) and relays the answer, except that with
`strip_mount=True` it removes the `mount` and `from` parameters of
`POST /v2/<name>/blobs/uploads/` - what Harbor does when the pushing user may
not read the source project - so the real registry answers 202 (upload
session) instead of 201 (mounted). The Host header is passed through, so the
registry's Location headers point back at the proxy.
"""

import http.client
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from typing import List
from urllib.parse import parse_qsl, urlencode, urlsplit

from .tokensrv import BackgroundServer, TLSService, TLSThreadingHTTPServer
from .util import client_tls_context

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
              "upgrade", "expect"}


class RegistryProxy(TLSService):
    def __init__(self, upstream_url: str, cafile: str, tls_cert: str, tls_key: str, strip_mount: bool = True):
        up = urlsplit(upstream_url)
        assert up.hostname.startswith("127."), "loopback only"
        self.upstream_host, self.upstream_port = up.hostname, up.port
        self.ctx = client_tls_context(cafile)
        self.strip_mount = strip_mount
        self.stripped: List[str] = []      # paths whose mount was removed
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._bg = BackgroundServer(TLSThreadingHTTPServer(("127.0.0.1", 0), handler, tls_cert, tls_key))


class _Handler(BaseHTTPRequestHandler):
    proxy: RegistryProxy = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _forward(self):
        p = self.proxy
        path = self.path
        if p.strip_mount and self.command == "POST" and "/blobs/uploads/" in path and "mount=" in path:
            base, _, query = path.partition("?")
            rest = [(k, v) for k, v in parse_qsl(query) if k not in ("mount", "from")]
            path = base + ("?" + urlencode(rest) if rest else "")
            with p.lock:
                p.stripped.append(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPSConnection(p.upstream_host, p.upstream_port, context=p.ctx, timeout=60)
        try:
            conn.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders()
            if body:
                conn.send(body)
            r = conn.getresponse()
            data = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(r.getheader("Content-Length") or len(data))
                             if self.command == "HEAD" else str(len(data)))
            self.end_headers()
            if self.command != "HEAD" and data:
                self.wfile.write(data)
        except (OSError, ssl.SSLError, http.client.HTTPException):
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()
        finally:
            conn.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward
