"""An HTTPS reverse proxy on 127.0.0.1 that sits between archmerge and the
real registry and injects faults, switchable while it runs.

    proxy = FaultProxy(upstream_url, cafile, cert, key).start()
    proxy.url                          -> https://127.0.0.1:PORT (put it in archmerge's registry url)
    proxy.set_mode("pass")             forward every request
    proxy.set_mode("refuse")           close the listener and every connection: connection refused
    proxy.set_mode("500")              answer 500 with a registry-style error body
    proxy.set_mode("500", message=m)   ... whose error message is m (any text, JSON-encoded)
    proxy.set_mode("429", retry_after=2)   answer 429 with Retry-After: 2
    proxy.set_mode("503", retry_after=1)   answer 503 with Retry-After: 1
    proxy.set_mode("reset")            reset the connection (RST) instead of answering
    proxy.set_mode("slow", delay=1.0)  wait, then forward
    proxy.set_mode("hang")             never answer (until the mode changes or the proxy stops)
    proxy.script(["500", "429:2", "reset", "slow:1.5"])  the next requests, in order, then the mode
                                       (a bare GET /v2/ ping takes the mode, not the script)
    proxy.log                          [(monotonic time, method, path, action)] of every request

TLS is terminated here with the test server certificate and spoken again to
the registry, so faults are HTTP answers archmerge really parses. Token
fetches go to the token service directly (the challenge names its realm).
"""

import collections
import json
import http.client
import socket
import ssl
import threading
import time
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

from .util import client_tls_context, free_port

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}
MAX_HEADER = 64 * 1024


class _Closed(Exception):
    pass


class FaultProxy:
    def __init__(self, upstream_url: str, cafile: str, cert: str, key: str, port: Optional[int] = None):
        parts = urlsplit(upstream_url)
        assert parts.hostname.startswith("127."), "loopback only"
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.upstream_tls = parts.scheme == "https"
        self.cafile = cafile
        self.port = port or free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self._server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_ctx.load_cert_chain(cert, key)
        self._lock = threading.Lock()
        self._mode = ("pass", {})
        self._script = collections.deque()
        self._changed = threading.Condition(self._lock)
        self._listener = None
        self._accept_thread = None
        self._conns = set()
        self._stopped = False
        self.log: List[Tuple[float, str, str, str]] = []
        self.hanging = 0

    # ------------------------------------------------------------ control
    def start(self):
        self._listen()
        return self

    def stop(self):
        with self._lock:
            self._stopped = True
            self._changed.notify_all()
        self._close_listener()
        self._drop_connections()

    def set_mode(self, mode: str, **params):
        assert mode in ("pass", "refuse", "500", "429", "503", "reset", "slow", "hang"), mode
        with self._lock:
            old = self._mode[0]
            self._mode = (mode, params)
            self._changed.notify_all()
        if mode == "refuse" and old != "refuse":
            self._close_listener()
            self._drop_connections()
        elif mode != "refuse" and old == "refuse":
            self._listen()

    def script(self, actions):
        """Actions for the next requests, in order: "500", "429:SECONDS", "503:SECONDS",
        "reset", "slow:SECONDS", "pass"."""
        with self._lock:
            self._script.extend(actions)

    def requests(self, needle: str = "") -> List[Tuple[float, str, str, str]]:
        with self._lock:
            return [e for e in self.log if needle in e[2]]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ listener
    def _listen(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        with self._lock:
            self._listener = sock
        t = threading.Thread(target=self._accept_loop, args=(sock,), daemon=True)
        t.start()
        self._accept_thread = t

    def _close_listener(self):
        with self._lock:
            sock, self._listener = self._listener, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _drop_connections(self):
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept_loop(self, sock):
        while True:
            try:
                raw, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    # ------------------------------------------------------------ one connection
    def _serve(self, raw):
        upstream = conn = rfile = None
        sock = raw
        with self._lock:
            self._conns.add(sock)
        try:
            raw.settimeout(60)
            conn = self._server_ctx.wrap_socket(raw, server_side=True)   # takes over raw's descriptor
            with self._lock:
                self._conns.discard(sock)
                sock = conn
                self._conns.add(sock)
            rfile = conn.makefile("rb")
            while True:
                req = self._read_request(rfile)
                if req is None:
                    return
                method, path, headers, body = req
                action = self._next_action(scripted=(method, path) != ("GET", "/v2/"))
                with self._lock:
                    self.log.append((time.monotonic(), method, path, action))
                kind, _, arg = action.partition(":")
                if kind == "reset":
                    # linger 0: close() sends RST instead of FIN
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    return
                if kind == "hang":
                    self._hang()
                    return
                if kind in ("500", "429", "503"):
                    self._answer_error(conn, int(kind), arg)
                    continue
                if kind == "slow":
                    time.sleep(float(arg or 1.0))
                upstream = self._forward(conn, upstream, method, path, headers, body)
        except (_Closed, OSError, ssl.SSLError, ValueError, http.client.HTTPException):
            return
        finally:
            with self._lock:
                self._conns.discard(sock)
            if upstream is not None:
                upstream.close()
            for f in (rfile, conn, raw):
                try:
                    if f is not None:
                        f.close()
                except OSError:
                    pass

    def _next_action(self, scripted: bool = True) -> str:
        # archmerge's background registry check pings GET /v2/ every few seconds at
        # any moment: it gets the mode, and never eats a scripted fault meant for work.
        with self._lock:
            if self._script and scripted:
                return self._script.popleft()
            mode, params = self._mode
        if mode in ("429", "503"):
            return f"{mode}:{params.get('retry_after', 1)}"
        if mode == "slow":
            return f"slow:{params.get('delay', 1.0)}"
        return mode

    def _hang(self):
        with self._lock:
            self.hanging += 1
            try:
                while not self._stopped and self._mode[0] == "hang":
                    self._changed.wait(0.5)
            finally:
                self.hanging -= 1

    @staticmethod
    def _read_request(rfile):
        line = rfile.readline(MAX_HEADER)
        if not line:
            return None
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3:
            raise _Closed()
        method, path, _ = parts
        headers = []
        size = 0
        while True:
            h = rfile.readline(MAX_HEADER)
            size += len(h)
            if not h or size > MAX_HEADER:
                raise _Closed()
            if h in (b"\r\n", b"\n"):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        length = 0
        for name, value in headers:
            if name.lower() == "content-length":
                length = int(value)
            if name.lower() == "transfer-encoding":
                raise _Closed()          # archmerge never sends chunked bodies
        body = rfile.read(length) if length else b""
        return method, path, headers, body

    @staticmethod
    def _send(conn, status: int, reason: str, headers, body: bytes, head: bool = False):
        out = [f"HTTP/1.1 {status} {reason}\r\n"]
        for name, value in headers:
            out.append(f"{name}: {value}\r\n")
        out.append("\r\n")
        conn.sendall("".join(out).encode("latin-1") + (b"" if head else body))

    def _answer_error(self, conn, status: int, retry_after: str):
        codes = {500: ("UNKNOWN", "Internal Server Error"), 429: ("TOOMANYREQUESTS", "Too Many Requests"),
                 503: ("UNAVAILABLE", "Service Unavailable")}
        code, reason = codes[status]
        with self._lock:
            message = self._mode[1].get("message", "injected by the test proxy")
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if status in (429, 503) and retry_after:
            headers.append(("Retry-After", retry_after))
        self._send(conn, status, reason, headers, body)

    def _forward(self, conn, upstream, method, path, headers, body):
        if upstream is None:
            if self.upstream_tls:
                upstream = http.client.HTTPSConnection(self.upstream_host, self.upstream_port, timeout=60,
                                                       context=client_tls_context(self.cafile))
            else:
                upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        upstream.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        upstream.putheader("Host", f"{self.upstream_host}:{self.upstream_port}")
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP and name.lower() != "host":
                upstream.putheader(name, value)
        if body or method in ("PUT", "POST", "PATCH"):
            upstream.putheader("Content-Length", str(len(body)))
        upstream.endheaders(body if body else None)
        resp = upstream.getresponse()
        data = resp.read()
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        if method == "HEAD":
            length = resp.getheader("Content-Length")
            if length is not None:
                out.append(("Content-Length", length))
        else:
            out.append(("Content-Length", str(len(data))))
        self._send(conn, resp.status, resp.reason, out, data, head=(method == "HEAD"))
        if resp.will_close:
            upstream.close()
            upstream = None
        return upstream
