"""A local stand-in for Harbor's REST API v2.0, webhook policies only, over
HTTPS in a background thread. It checks every request against the rules in
shared/HARBOR.md and answers the way Harbor does:

    GET|POST       /api/v2.0/projects/{project_name_or_id}/webhook/policies
    GET|PUT|DELETE /api/v2.0/projects/{project_name_or_id}/webhook/policies/{id}

Rules enforced (a broken rule answers Harbor's error and is recorded in
`violations`, so tests can assert that none happened):
- Basic auth with the admin credentials, else 401.
- `X-Is-Resource-Name: true` is needed to address a project by name; without
  it the name is parsed as an id (400), like Harbor.
- Unknown project or policy: 404.
- Bodies: JSON object, `name` non-empty, `enabled` sent explicitly as a bool
  (Harbor would silently store false), `event_types` non-empty and known,
  `targets` non-empty with type http|slack, an http(s) `address`, a string
  `auth_header`, a bool `skip_cert_verify`, `payload_format` Default|CloudEvents.
- Names are unique per project: 409 on POST (and on PUT renaming onto another).
- 201 + Location on create, 200 on update, 200 + JSON list on GET (pages:
  page, page_size default 10 like Harbor, X-Total-Count).
"""

import base64
import binascii
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Dict, List, Optional
from urllib.parse import parse_qs, unquote, urlsplit

from .tokensrv import BackgroundServer, TLSService, TLSThreadingHTTPServer

EVENT_TYPES = {"PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT", "SCANNING_COMPLETED", "SCANNING_FAILED",
               "SCANNING_STOPPED", "QUOTA_EXCEED", "QUOTA_WARNING", "REPLICATION", "TAG_RETENTION"}
PAYLOAD_FORMATS = {"Default", "CloudEvents"}
PREFIX = "/api/v2.0/projects/"


@dataclass
class Call:
    method: str
    path: str
    status: int
    headers: Dict[str, str]
    body: Optional[object] = None
    time: float = field(default_factory=time.time)


class HarborStandin(TLSService):
    def __init__(self, *, tls_cert: str, tls_key: str, admin_user: str, admin_password: str,
                 projects=("library",), host: str = "127.0.0.1"):
        assert host.startswith("127."), "loopback only"
        self.admin_user, self.admin_password = admin_user, admin_password
        self.projects: Dict[str, int] = {name: i + 1 for i, name in enumerate(projects)}
        self.policies: Dict[int, List[dict]] = {pid: [] for pid in self.projects.values()}
        self.calls: List[Call] = []
        self.violations: List[str] = []
        self._next_id = 1
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"standin": self})
        self._bg = BackgroundServer(TLSThreadingHTTPServer((host, 0), handler, tls_cert, tls_key))
        self.host = host

    def policies_of(self, project: str) -> List[dict]:
        with self._lock:
            return [dict(p) for p in self.policies[self.projects[project]]]

    def writes(self) -> List[Call]:
        return [c for c in self.calls if c.method in ("POST", "PUT", "DELETE")]

    # -- request handling (called under the lock)

    def violation(self, what: str):
        self.violations.append(what)

    def check_policy(self, body) -> Optional[str]:
        """Why the body is not a valid policy for Harbor, or None."""
        if not isinstance(body, dict):
            return "body must be a JSON object"
        if not isinstance(body.get("name"), str) or not body["name"]:
            return "name is required"
        if "enabled" not in body or not isinstance(body["enabled"], bool):
            return "enabled must be sent explicitly as a boolean"
        ev = body.get("event_types")
        if not isinstance(ev, list) or not ev or any(e not in EVENT_TYPES for e in ev):
            return f"event_types invalid: {ev!r}"
        targets = body.get("targets")
        if not isinstance(targets, list) or not targets:
            return "targets must be a non-empty list"
        for t in targets:
            if not isinstance(t, dict):
                return "target must be an object"
            if t.get("type") not in ("http", "slack"):
                return f"target type invalid: {t.get('type')!r}"
            addr = t.get("address")
            if not isinstance(addr, str) or not (addr.startswith("http://") or addr.startswith("https://")):
                return f"target address invalid: {addr!r}"
            if "auth_header" in t and not isinstance(t["auth_header"], str):
                return "auth_header must be a string"
            if not isinstance(t.get("skip_cert_verify", False), bool):
                return "skip_cert_verify must be a boolean"
            if t.get("payload_format", "Default") not in PAYLOAD_FORMATS:
                return f"payload_format invalid: {t.get('payload_format')!r}"
        return None


def _error(code: str, message: str) -> dict:
    return {"errors": [{"code": code, "message": message}]}


class _Handler(BaseHTTPRequestHandler):
    standin: HarborStandin = None
    protocol_version = "HTTP/1.1"
    server_version = "harbor-standin"

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status: int, obj=None, headers: Optional[Dict[str, str]] = None):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        return status

    def _authenticated(self) -> bool:
        h = self.headers.get("Authorization") or ""
        if not h.lower().startswith("basic "):
            return False
        try:
            user, _, pw = base64.b64decode(h[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        s = self.standin
        return user == s.admin_user and pw == s.admin_password

    def _read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return raw, "Content-Type must be application/json"
        try:
            return json.loads(raw), None
        except ValueError:
            return raw, "body is not JSON"

    def _handle(self, method: str):
        s = self.standin
        url = urlsplit(self.path)
        body, body_err = (None, None)
        if method in ("POST", "PUT"):
            body, body_err = self._read_json()
        with s._lock:
            status = self._route(method, url, body, body_err)
            s.calls.append(Call(method, self.path, status, {k.lower(): v for k, v in self.headers.items()},
                                body))

    def _route(self, method, url, body, body_err) -> int:
        s = self.standin
        if not self._authenticated():
            s.violation(f"{method} {url.path}: no or wrong Basic credentials")
            return self._reply(401, _error("UNAUTHORIZED", "unauthorized"))
        if not url.path.startswith(PREFIX):
            return self._reply(404, _error("NOT_FOUND", "no such API"))
        parts = url.path[len(PREFIX):].split("/")
        if len(parts) not in (3, 4) or parts[1:3] != ["webhook", "policies"]:
            return self._reply(404, _error("NOT_FOUND", "no such API"))
        ref = unquote(parts[0])
        by_name = (self.headers.get("X-Is-Resource-Name") or "").lower() == "true"
        if by_name:
            pid = s.projects.get(ref)
        else:
            if not ref.isdigit():
                s.violation(f"{method} {url.path}: project named without X-Is-Resource-Name: true")
                return self._reply(400, _error("BAD_REQUEST", f"invalid project id {ref!r}"))
            pid = int(ref) if int(ref) in s.policies else None
        if pid is None:
            return self._reply(404, _error("NOT_FOUND", f"project {ref} not found"))
        policies = s.policies[pid]
        if len(parts) == 3:
            if method == "GET":
                return self._list(policies, url)
            if method == "POST":
                return self._create(pid, ref, policies, body, body_err)
            return self._reply(405, _error("METHOD_NOT_ALLOWED", method))
        if not parts[3].isdigit():
            return self._reply(400, _error("BAD_REQUEST", "invalid policy id"))
        pol = next((p for p in policies if p["id"] == int(parts[3])), None)
        if pol is None:
            return self._reply(404, _error("NOT_FOUND", "policy not found"))
        if method == "GET":
            return self._reply(200, pol)
        if method == "DELETE":
            policies.remove(pol)
            return self._reply(200)
        if method == "PUT":
            return self._update(policies, pol, body, body_err)
        return self._reply(405, _error("METHOD_NOT_ALLOWED", method))

    def _list(self, policies, url):
        q = parse_qs(url.query)
        page = int(q.get("page", ["1"])[0])
        size = min(int(q.get("page_size", ["10"])[0]), 100)
        chunk = policies[(page - 1) * size: page * size]
        return self._reply(200, chunk, {"X-Total-Count": str(len(policies))})

    def _stored(self, pid, body, existing=None) -> dict:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        pol = {"id": existing["id"] if existing else None, "name": body["name"],
               "description": body.get("description", ""), "project_id": pid,
               "targets": [dict({"auth_header": "", "skip_cert_verify": False, "payload_format": "Default"}, **t)
                           for t in body["targets"]],
               "event_types": list(body["event_types"]), "creator": self.standin.admin_user,
               "creation_time": existing["creation_time"] if existing else now, "update_time": now,
               "enabled": body["enabled"]}
        return pol

    def _create(self, pid, ref, policies, body, body_err):
        s = self.standin
        why = body_err or s.check_policy(body)
        if why:
            s.violation(f"POST policy: {why}")
            return self._reply(400, _error("BAD_REQUEST", why))
        if any(p["name"] == body["name"] for p in policies):
            s.violation(f"POST policy: name {body['name']!r} already exists")
            return self._reply(409, _error("CONFLICT", f"policy {body['name']} already exists"))
        pol = self._stored(pid, body)
        pol["id"] = s._next_id
        s._next_id += 1
        policies.append(pol)
        return self._reply(201, None, {"Location": f"{PREFIX}{ref}/webhook/policies/{pol['id']}"})

    def _update(self, policies, pol, body, body_err):
        s = self.standin
        why = body_err or s.check_policy(body)
        if why:
            s.violation(f"PUT policy: {why}")
            return self._reply(400, _error("BAD_REQUEST", why))
        if any(p["name"] == body["name"] and p is not pol for p in policies):
            s.violation(f"PUT policy: name {body['name']!r} taken by another policy")
            return self._reply(409, _error("CONFLICT", "name taken"))
        policies[policies.index(pol)] = self._stored(pol["project_id"], body, pol)
        return self._reply(200)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")
