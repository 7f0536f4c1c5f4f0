"""A Harbor-like bearer token service over HTTPS, run in a background thread.

GET /service/token?service=harbor-registry&scope=repository:<repo>:pull,push
with `Authorization: Basic ...`. Known users get a JWT granting the requested
(and permitted) actions; wrong or missing credentials still get 200 with an
anonymous token that grants nothing, exactly like Harbor. The reply mimics
Harbor's: {"token": JWT, "access_token": "", "expires_in": 1800, "issued_at": ...}.

What distribution 2.8.2 (Debian docker-registry) accepts, found by testing:
- RS256 or ES256; header `x5c` = [signing cert (base64 DER), optional chain].
  The x5c chain must verify (Go x509, any EKU) against
  `auth.token.rootcertbundle`; the bundle may hold the signing cert itself
  (what Harbor does) or the CA that issued it. A self-signed signing cert
  works if it is in the bundle.
- Without x5c, `kid` must be the libtrust key ID of a key whose certificate
  is in the bundle; a token with neither fails ("unable to get token signing key").
- `iss` must equal auth.token.issuer; `aud` must be a plain STRING equal to
  auth.token.service (a JSON list is rejected as "malformed token" in 2.8);
  `exp` is required, `nbf` is checked when present (60 s leeway both ways),
  `iat`/`jti` are not checked (sent anyway, like Harbor); empty or missing
  `access` -> 401 error="insufficient_scope".
"""

import base64
import binascii
import datetime
import fnmatch
import hashlib
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Union
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


# --------------------------------------------------------------------------
# Generic HTTPS server plumbing (also used by other harness servers).

class TLSThreadingHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with TLS; the handshake runs in the worker thread
    so a client that connects and stalls cannot block accept()."""

    daemon_threads = True
    handshake_timeout = 5.0

    def __init__(self, address, handler, certfile, keyfile):
        self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl_context.load_cert_chain(certfile, keyfile)
        super().__init__(address, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        try:
            request.settimeout(self.handshake_timeout)
            request.do_handshake()
            request.settimeout(None)
        except (OSError, ssl.SSLError):
            return  # bad client (or a bare TCP probe): drop it quietly
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # keep test output clean; failures show up in the tests


class BackgroundServer:
    """Runs an http.server instance in a daemon thread; stop() is idempotent."""

    def __init__(self, server):
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=type(server).__name__, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join(5)
        self.server.server_close()


# --------------------------------------------------------------------------

class TLSService:
    """start/stop/url for a test server object whose `_bg` is a BackgroundServer
    (TLS) and whose `host` is its loopback address."""
    host = "127.0.0.1"

    def start(self):
        self._bg.start()
        return self

    def stop(self):
        self._bg.stop()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self._bg.port}"


def rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_scope(scope: str):
    """'repository:library/app:pull,push' -> ('repository', 'library/app', ['pull', 'push'])."""
    typ, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not typ or not name:
        return None
    return typ, name, [a for a in actions.split(",") if a]


def libtrust_key_id(public_key) -> str:
    """docker/libtrust key ID: base32 of the first 240 bits of sha256(SPKI DER),
    in 12 colon-separated groups of 4 (what distribution matches `kid` against)."""
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(spki).digest()[:30]).decode()
    return ":".join(b32[i:i + 4] for i in range(0, 48, 4))


@dataclass
class TokenRequest:
    """One request as seen by the token service (for assertions in tests)."""
    user: Optional[str]           # user name sent (even if the password was wrong)
    authenticated: bool
    service: Optional[str]
    scopes: List[str]
    access: list                  # what the issued token grants
    time: float = field(default_factory=time.time)


# Permissions: user -> list of actions allowed on any repository, or
# user -> {repository glob: [actions]}. Users absent from the map may do anything.
Permissions = Dict[str, Union[List[str], Dict[str, List[str]]]]


class TokenService:
    def __init__(self, *, tls_cert: str, tls_key: str, signing_key: str, signing_chain: List[str],
                 users: Dict[str, str], permissions: Optional[Permissions] = None,
                 issuer: str = "harbor-token-issuer", service: str = "harbor-registry",
                 expires_in: int = 1800, host: str = "127.0.0.1", port: int = 0,
                 key_header: str = "x5c"):
        """signing_chain: PEM cert files, signing (leaf) certificate first; all go into `x5c`.

        key_header: "x5c" (what Harbor does; the chain must verify against the
        registry's rootcertbundle) or "kid" (libtrust key ID of the signing
        key; then the bundle must contain the signing certificate itself).
        """
        assert host.startswith("127."), "loopback only"
        self.users = dict(users)
        self.permissions = dict(permissions or {})
        self.issuer = issuer
        self.service = service
        self.expires_in = expires_in
        with open(signing_key, "rb") as f:
            self._key = serialization.load_pem_private_key(f.read(), password=None)
        if isinstance(self._key, rsa.RSAPrivateKey):
            self.algorithm = "RS256"
        elif isinstance(self._key, ec.EllipticCurvePrivateKey):
            self.algorithm = "ES256"
        else:
            raise ValueError("signing key must be RSA or EC P-256")
        self._x5c = []
        for path in signing_chain:
            with open(path, "rb") as f:
                cert = x509.load_pem_x509_certificate(f.read())
            self._x5c.append(base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode())
        self.key_header = key_header
        self.fail_status: Optional[int] = None   # set e.g. 503 to simulate an outage
        self.delay: float = 0.0                  # seconds to stall each reply
        self._lock = threading.Lock()
        self.request_count = 0
        self.requests: List[TokenRequest] = []
        handler = type("Handler", (_TokenHandler,), {"tokens": self})
        self._bg = BackgroundServer(TLSThreadingHTTPServer((host, port), handler, tls_cert, tls_key))
        self.host = host

    # -- lifecycle
    def start(self):
        self._bg.start()
        return self

    def stop(self):
        self._bg.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        return self._bg.port

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def realm(self) -> str:
        return f"{self.url}/service/token"

    def reset_counters(self):
        with self._lock:
            self.request_count = 0
            self.requests.clear()

    # -- policy
    def allowed_actions(self, user: str, typ: str, name: str, wanted: List[str]) -> List[str]:
        perm = self.permissions.get(user)
        if perm is None:
            allowed = None  # everything
        elif isinstance(perm, dict):
            allowed = next((acts for pat, acts in perm.items() if fnmatch.fnmatchcase(name, pat)), [])
        else:
            allowed = perm
        if allowed is None or "*" in allowed:
            return list(wanted)
        return [a for a in wanted if a in allowed]

    def authenticate(self, header: Optional[str]):
        """-> (user name or None, authenticated?)"""
        if not header or not header.lower().startswith("basic "):
            return None, False
        try:
            user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, False
        return user, (user in self.users and self.users[user] == password)

    def issue(self, user: Optional[str], authenticated: bool, service: Optional[str], scopes: List[str]) -> dict:
        access = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if not parsed:
                continue
            typ, name, wanted = parsed
            granted = self.allowed_actions(user, typ, name, wanted) if authenticated else []
            access.append({"type": typ, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user if authenticated else "",   # Harbor: empty subject for anonymous
            "aud": service or self.service,
            "exp": now + self.expires_in,
            "nbf": now,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        if self.key_header == "x5c":
            headers = {"x5c": self._x5c}
        else:
            headers = {"kid": libtrust_key_id(self._key.public_key())}
        token = jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)
        with self._lock:
            self.request_count += 1
            self.requests.append(TokenRequest(user, authenticated, service, scopes, access))
        return {"token": token, "access_token": "", "expires_in": self.expires_in, "issued_at": rfc3339(now)}


class _TokenHandler(BaseHTTPRequestHandler):
    tokens: TokenService = None
    protocol_version = "HTTP/1.1"
    server_version = "tokensrv"

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path != "/service/token":
            return self._reply(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})
        if self.tokens.delay:
            time.sleep(self.tokens.delay)
        if self.tokens.fail_status:
            with self.tokens._lock:
                self.tokens.request_count += 1
            return self._reply(self.tokens.fail_status, {"errors": [{"code": "UNAVAILABLE", "message": "injected"}]})
        query = parse_qs(url.query)
        # `scope` may repeat; some clients also space-join several in one.
        scopes = [s for v in query.get("scope", []) for s in v.split(" ") if s]
        service = query.get("service", [None])[0]
        user, ok = self.tokens.authenticate(self.headers.get("Authorization"))
        self._reply(200, self.tokens.issue(user, ok, service, scopes))

    def do_POST(self):  # Harbor's token endpoint is GET-only
        self._reply(405, {"errors": [{"code": "METHOD_NOT_ALLOWED", "message": "use GET"}]})
