"""A local stand-in for Harbor's REST API v2.0 over HTTPS in a background
thread: webhook policies, their delivery executions, and the change feed's
list calls. It checks every request against the rules in shared/HARBOR.md and
answers the way Harbor does:

    GET|POST       /api/v2.0/projects/{project_name_or_id}/webhook/policies
    GET|PUT|DELETE /api/v2.0/projects/{project_name_or_id}/webhook/policies/{id}
    GET /api/v2.0/projects/{p}/webhook/policies/{id}/executions
    GET /api/v2.0/projects/{p}/webhook/policies/{id}/executions/{eid}/tasks
    GET /api/v2.0/projects/{p}/webhook/policies/{id}/executions/{eid}/tasks/{tid}/log
    GET /api/v2.0/projects
    GET /api/v2.0/projects/{p}/repositories?sort=-update_time&page=&page_size=
    GET /api/v2.0/projects/{p}/repositories/{r}/artifacts?with_tag=true&sort=-push_time&page=&page_size=

Models and field names follow goharbor/harbor api/v2.0/swagger.yaml: Project
(project_id, name), Repository (id, project_id, name, artifact_count,
creation_time, update_time), Artifact (id, type, media_type, digest,
push_time, pull_time, repository_id, tags[]), Tag (id, repository_id,
artifact_id, name, push_time, pull_time, immutable), Execution (id,
vendor_type, vendor_id, status, status_message, trigger, extra_attrs,
start_time, end_time) and Task (id, execution_id, status, status_message,
run_count, extra_attrs, creation_time, start_time, update_time, end_time);
a task's log is text/plain.

The change feed's answers come from the REAL registry's state: with
`storage_root` (the distribution registry's filesystem root) the stand-in
reads the repositories, tags and digests from <root>/docker/registry/v2/
repositories, and takes a tag's push time from the modification time of its
`current/link` (distribution rewrites it on every push of the tag), an
artifact's as the newest of its tags (or of its revision link when untagged),
a repository's update_time as the newest push in it, or its last pull when
later: Harbor's AddPullCount (src/pkg/repository/dao/dao.go) sets update_time
with the pull count, so `pulled(repo)` says a pull happened. Nothing else is
recorded by the test: what was pushed is what is listed.

For the bench, `synthesize()` adds repositories that exist only as listings
(artifacts made up on request from a name, versions and architectures), so a
Harbor of a thousand repositories costs no registry storage; they are listed
beside the real ones, in the same order, and what is really pushed into one
of them is listed with its made-up artifacts.

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
- List calls (projects, repositories, artifacts) also accept the users in
  `readers` (a robot account); a reader in `deny_list` gets 403 like a robot
  without the list repository / list artifact permissions. A repository name
  below the project holding '/' must be URL-encoded twice, else 404.
- Executions, tasks and logs are what the test put in with add_delivery().
"""

import base64
import binascii
import hashlib
import json
import os
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
    time: float = field(default_factory=time.time)     # when the answer was written
    start: float = 0.0                                  # when the request was read


class HarborStandin(TLSService):
    def __init__(self, *, tls_cert: str, tls_key: str, admin_user: str, admin_password: str,
                 projects=("library",), host: str = "127.0.0.1", storage_root: Optional[str] = None,
                 readers: Optional[Dict[str, str]] = None):
        assert host.startswith("127."), "loopback only"
        self.admin_user, self.admin_password = admin_user, admin_password
        self.storage_root = storage_root
        self.readers: Dict[str, str] = dict(readers or {})
        self.deny_list: set = set()
        self.executions: Dict[int, List[dict]] = {}     # policy id -> executions, newest first
        self.tasks: Dict[int, List[dict]] = {}          # execution id -> tasks
        self.logs: Dict[int, str] = {}                  # task id -> log text
        self.projects: Dict[str, int] = {name: i + 1 for i, name in enumerate(projects)}
        self.pulls: Dict[str, float] = {}               # repository -> last pull (update_time)
        self.synthetic: Dict[str, dict] = {}            # repository -> {"versions", "archs", "push"}
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

    def feed_calls(self) -> List[Call]:
        return [c for c in self.calls if "/repositories" in c.path or c.path.split("?")[0] == "/api/v2.0/projects"]

    def add_delivery(self, project: str, policy_name: str, *, status: str = "Error",
                     message: str = "", log: str = "") -> int:
        """One webhook delivery of `policy_name`: an execution with one task and its log, as
        Harbor's job service leaves them. Returns the execution id."""
        with self._lock:
            pol = next(p for p in self.policies[self.projects[project]] if p["name"] == policy_name)
            eid = self._next_id
            tid = self._next_id + 1
            self._next_id += 2
            now = _iso(time.time())
            self.executions.setdefault(pol["id"], []).insert(0, {
                "id": eid, "vendor_type": "WEBHOOK", "vendor_id": pol["id"], "status": status,
                "status_message": message, "trigger": "EVENT", "metrics": None,
                "extra_attrs": {"event_type": "PUSH_ARTIFACT"}, "start_time": now, "end_time": now})
            self.tasks[eid] = [{"id": tid, "execution_id": eid, "status": status, "status_message": message,
                                "run_count": 3, "extra_attrs": {}, "creation_time": now, "start_time": now,
                                "update_time": now, "end_time": now}]
            self.logs[tid] = log
            return eid

    def pulled(self, repo: str, when: Optional[float] = None):
        """A pull of `repo`: Harbor moves the repository's update_time with its pull count."""
        with self._lock:
            self.pulls[repo] = time.time() if when is None else when

    def synthesize(self, project: str, repos: Dict[str, dict]):
        """Listing-only repositories of `project`: name -> {"versions": [...], "archs": [...],
        "push": epoch seconds of the newest push}. Their artifacts are made up on request."""
        with self._lock:
            if project not in self.projects:
                self.projects[project] = len(self.projects) + 1
                self.policies[self.projects[project]] = []
            for name, spec in repos.items():
                self.synthetic[f"{project}/{name}"] = dict(spec)

    def _synthetic_repos(self, project: str) -> List[dict]:
        out = []
        for name, spec in self.synthetic.items():
            if name.split("/", 1)[0] != project:
                continue
            real = [a["_push"] for a in self.registry_artifacts(name)] if self.storage_root else []
            newest = max([spec["push"], self.pulls.get(name, 0.0)] + real)
            out.append({"id": abs(hash(name)) % 100000, "project_id": self.projects[project], "name": name,
                        "description": "", "artifact_count": len(spec["versions"]) * len(spec["archs"]),
                        "pull_count": 0, "creation_time": _iso(spec["push"] - 86400),
                        "update_time": _iso(newest), "_update": newest})
        return out

    def _synthetic_artifacts(self, repo: str) -> List[dict]:
        spec = self.synthetic[repo]
        out = []
        n = len(spec["versions"]) * len(spec["archs"])
        for i, (v, a) in enumerate((v, a) for v in spec["versions"] for a in spec["archs"]):
            push = spec["push"] - (n - 1 - i)          # one second apart, the last one newest
            digest = "sha256:" + hashlib.sha256(f"{repo}:{v}-{a}".encode()).hexdigest()
            out.append({"id": i + 1, "type": "IMAGE", "media_type": "", "manifest_media_type": "",
                        "project_id": 0, "repository_id": 0, "digest": digest, "size": 0,
                        "push_time": _iso(push), "pull_time": "0001-01-01T00:00:00.000Z",
                        "tags": [{"id": i + 1, "repository_id": 0, "artifact_id": i + 1, "name": f"{v}-{a}",
                                  "push_time": _iso(push), "pull_time": "0001-01-01T00:00:00.000Z",
                                  "immutable": False}], "_push": push})
        return out

    # -- the registry's state, read from its storage

    def _repos_dir(self) -> str:
        return os.path.join(self.storage_root, "docker", "registry", "v2", "repositories")

    def registry_repos(self, project: str) -> List[dict]:
        """Harbor Repository models of `project`, from the registry's storage."""
        out = []
        if self.storage_root is None:
            return out
        base = self._repos_dir()
        pdir = os.path.join(base, project)
        for root, dirs, _files in os.walk(pdir):
            if "_manifests" not in dirs:
                continue
            name = os.path.relpath(root, base)
            if name in self.synthetic:       # listed with its made-up artifacts
                continue
            arts = self.registry_artifacts(name)
            if not arts:
                continue
            newest = max(max(a["_push"] for a in arts), self.pulls.get(name, 0.0))
            out.append({"id": abs(hash(name)) % 100000, "project_id": self.projects[project], "name": name,
                        "description": "", "artifact_count": len(arts), "pull_count": 0,
                        "creation_time": _iso(min(a["_push"] for a in arts)), "update_time": _iso(newest),
                        "_update": newest})
        return out

    def registry_artifacts(self, repo: str) -> List[dict]:
        """Harbor Artifact models (with tags) of `repo`, from the registry's storage."""
        mdir = os.path.join(self._repos_dir(), repo, "_manifests")
        by_digest: Dict[str, dict] = {}
        rev = os.path.join(mdir, "revisions", "sha256")
        for hexd in (os.listdir(rev) if os.path.isdir(rev) else []):
            link = os.path.join(rev, hexd, "link")
            if os.path.exists(link):
                by_digest["sha256:" + hexd] = {"_push": os.stat(link).st_mtime, "tags": []}
        tdir = os.path.join(mdir, "tags")
        for tag in (os.listdir(tdir) if os.path.isdir(tdir) else []):
            link = os.path.join(tdir, tag, "current", "link")
            try:
                with open(link) as f:
                    digest = f.read().strip()
                mtime = os.stat(link).st_mtime
            except OSError:
                continue
            a = by_digest.setdefault(digest, {"_push": mtime, "tags": []})
            if not a["tags"] or mtime > a["_push"]:
                a["_push"] = mtime if not a["tags"] else max(a["_push"], mtime)
            a["tags"].append({"id": abs(hash((repo, tag))) % 100000, "repository_id": 0, "artifact_id": 0,
                              "name": tag, "push_time": _iso(mtime), "pull_time": "0001-01-01T00:00:00.000Z",
                              "immutable": False})
        out = []
        for digest, a in by_digest.items():
            out.append({"id": abs(hash((repo, digest))) % 100000, "type": "IMAGE", "media_type": "",
                        "manifest_media_type": "", "project_id": 0, "repository_id": 0, "digest": digest,
                        "size": 0, "push_time": _iso(a["_push"]), "pull_time": "0001-01-01T00:00:00.000Z",
                        "tags": sorted(a["tags"], key=lambda t: t["name"]) or None, "_push": a["_push"]})
        return out

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


def _iso(t: float) -> str:
    """Harbor's time format: RFC 3339 UTC with milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def _page(items: list, q: dict, default_size: int = 10):
    page = int(q.get("page", ["1"])[0])
    size = min(int(q.get("page_size", [str(default_size)])[0]), 100)
    return items[(page - 1) * size: page * size]


def _public(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


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

    def _user(self) -> Optional[str]:
        h = self.headers.get("Authorization") or ""
        if not h.lower().startswith("basic "):
            return None
        try:
            user, _, pw = base64.b64decode(h[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        s = self.standin
        if user == s.admin_user and pw == s.admin_password:
            return user
        if s.readers.get(user) == pw:
            return user
        return None

    def _authenticated(self) -> bool:
        return self._user() == self.standin.admin_user

    def _reply_text(self, status: int, text: str):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return status

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
        start = time.time()
        url = urlsplit(self.path)
        body, body_err = (None, None)
        if method in ("POST", "PUT"):
            body, body_err = self._read_json()
        with s._lock:
            status = self._route(method, url, body, body_err)
            s.calls.append(Call(method, self.path, status, {k.lower(): v for k, v in self.headers.items()},
                                body, start=start))

    def _route(self, method, url, body, body_err) -> int:
        s = self.standin
        if method == "GET" and (url.path == "/api/v2.0/projects" or "/repositories" in url.path):
            return self._feed(url)
        if not self._authenticated():
            s.violation(f"{method} {url.path}: no or wrong Basic credentials")
            return self._reply(401, _error("UNAUTHORIZED", "unauthorized"))
        if not url.path.startswith(PREFIX):
            return self._reply(404, _error("NOT_FOUND", "no such API"))
        parts = url.path[len(PREFIX):].split("/")
        if len(parts) > 4 and parts[1:3] == ["webhook", "policies"] and method == "GET":
            return self._executions(parts, url)
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

    def _executions(self, parts, url):
        """.../policies/{id}/executions[/{eid}/tasks[/{tid}/log]]"""
        s = self.standin
        if (self.headers.get("X-Is-Resource-Name") or "").lower() != "true" or unquote(parts[0]) not in s.projects:
            return self._reply(404, _error("NOT_FOUND", "project not found"))
        if not parts[3].isdigit() or not any(p["id"] == int(parts[3]) for p in s.policies[s.projects[unquote(parts[0])]]):
            return self._reply(404, _error("NOT_FOUND", "policy not found"))
        rest = parts[4:]
        q = parse_qs(url.query)
        execs = s.executions.get(int(parts[3]), [])
        if rest == ["executions"]:
            return self._reply(200, _page(execs, q), {"X-Total-Count": str(len(execs))})
        if len(rest) >= 3 and rest[0] == "executions" and rest[1].isdigit() and rest[2] == "tasks":
            eid = int(rest[1])
            if not any(e["id"] == eid for e in execs):
                return self._reply(404, _error("NOT_FOUND", "execution not found"))
            tasks = s.tasks.get(eid, [])
            if len(rest) == 3:
                return self._reply(200, _page(tasks, q), {"X-Total-Count": str(len(tasks))})
            if len(rest) == 5 and rest[3].isdigit() and rest[4] == "log" and \
                    any(t["id"] == int(rest[3]) for t in tasks):
                return self._reply_text(200, s.logs.get(int(rest[3]), ""))
            return self._reply(404, _error("NOT_FOUND", "task not found"))
        return self._reply(404, _error("NOT_FOUND", "no such API"))

    def _feed(self, url):
        """The change feed's list calls, answered from the registry's storage."""
        s = self.standin
        user = self._user()
        if user is None:
            s.violation(f"GET {url.path}: no or wrong Basic credentials")
            return self._reply(401, _error("UNAUTHORIZED", "unauthorized"))
        q = parse_qs(url.query)
        if url.path == "/api/v2.0/projects":
            items = [{"project_id": pid, "name": name, "owner_name": "admin", "repo_count": 0}
                     for name, pid in s.projects.items()]
            return self._reply(200, _page(items, q), {"X-Total-Count": str(len(items))})
        if user in s.deny_list:
            return self._reply(403, _error("FORBIDDEN", f"{user} has no permission to list"))
        raw = url.path[len(PREFIX):].split("/")
        if (self.headers.get("X-Is-Resource-Name") or "").lower() != "true" and not raw[0].isdigit():
            s.violation(f"GET {url.path}: project named without X-Is-Resource-Name: true")
            return self._reply(400, _error("BAD_REQUEST", f"invalid project id {raw[0]!r}"))
        project = unquote(raw[0])
        if project not in s.projects or (s.storage_root is None and not s.synthetic):
            return self._reply(404, _error("NOT_FOUND", f"project {project} not found"))
        if raw[1:] == ["repositories"]:
            if q.get("sort", [""])[0] != "-update_time":
                s.violation(f"GET {url.path}: the feed must sort by -update_time")
            repos = sorted(s.registry_repos(project) + s._synthetic_repos(project), key=lambda r: -r["_update"])
            return self._reply(200, [_public(r) for r in _page(repos, q)], {"X-Total-Count": str(len(repos))})
        if len(raw) == 4 and raw[1] == "repositories" and raw[3] == "artifacts":
            once = unquote(raw[2])
            if "/" in once:      # encoded once: Harbor's router sees extra path segments
                return self._reply(404, _error("NOT_FOUND", "repository name must be URL-encoded twice"))
            name = unquote(once)
            if q.get("sort", [""])[0] != "-push_time" or q.get("with_tag", [""])[0] != "true":
                s.violation(f"GET {url.path}: the feed must ask with_tag=true&sort=-push_time")
            full = f"{project}/{name}"
            arts = s._synthetic_artifacts(full) if full in s.synthetic else []
            arts += s.registry_artifacts(full) if s.storage_root else []
            arts = sorted(arts, key=lambda a: -a["_push"])
            if not arts:
                return self._reply(404, _error("NOT_FOUND", f"repository {project}/{name} not found"))
            return self._reply(200, [_public(a) for a in _page(arts, q)], {"X-Total-Count": str(len(arts))})
        return self._reply(404, _error("NOT_FOUND", "no such API"))

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
