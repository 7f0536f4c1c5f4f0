"""A stand-in for the one Harbor REST call archmerge's cleanup makes, over HTTPS:

    DELETE /api/v2.0/projects/{project}/repositories/{repository}/artifacts/{reference}/tags/{tag}

What it checks the way Harbor does (see shared/HARBOR.md):
- Basic auth with a known user, else 401 with Harbor's error body;
- {repository} is the repository below the project, URL-encoded twice when it
  holds '/' ("team/app" -> "team%252Fapp"). A raw '/' or a single encoding
  ("team%2Fapp") makes Harbor's router see extra path segments: 404 here too;
- the tag must be on the artifact {reference} (a digest), else 404.

What is emulated, not real: distribution has no API to remove one tag and keep
the artifact, so the stand-in removes the tag from the REAL registry's
filesystem storage (<root>/docker/registry/v2/repositories/<repo>/_manifests/
tags/<tag>), which is what a tag removal amounts to there: GET of the tag and
the tag list no longer show it, the manifest stays reachable by digest.

Any other request (notably DELETE .../artifacts/{reference}, an artifact
deletion) is answered 405 and recorded in `other`, so tests can assert it
never happened.
"""

import base64
import binascii
import json
import os
import shutil
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Dict, List, Optional
from urllib.parse import unquote

from .tokensrv import BackgroundServer, TLSService, TLSThreadingHTTPServer


@dataclass
class TagCall:
    raw_path: str
    user: Optional[str]
    project: str
    repository: str          # decoded twice: "team/app"
    reference: str
    tag: str
    status: int


class HarborTagsStandin(TLSService):
    """HarborTagsStandin(storage_root, users, tls_cert, tls_key).start(); .url is the
    Harbor base URL to give archmerge as harbor_url; .calls / .other record requests."""

    def __init__(self, storage_root: str, users: Dict[str, str], tls_cert: str, tls_key: str,
                 host: str = "127.0.0.1"):
        assert host.startswith("127."), "loopback only"
        self.storage_root = storage_root
        self.users = dict(users)
        self.calls: List[TagCall] = []
        self.other: List[tuple] = []          # (method, raw path, status)
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"standin": self})
        self._bg = BackgroundServer(TLSThreadingHTTPServer((host, 0), handler, tls_cert, tls_key))
        self.host = host

    def tag_dir(self, repo: str, tag: str) -> str:
        return os.path.join(self.storage_root, "docker", "registry", "v2", "repositories", repo,
                            "_manifests", "tags", tag)


class _Handler(BaseHTTPRequestHandler):
    standin: HarborTagsStandin = None
    protocol_version = "HTTP/1.1"
    server_version = "harbor-standin"

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status: int, obj=None):
        body = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str):
        self._reply(status, {"errors": [{"code": code, "message": message}]})
        return status

    def _user(self) -> Optional[str]:
        h = self.headers.get("Authorization") or ""
        if not h.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(h[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user if self.standin.users.get(user) == password else None

    def _other(self):
        status = self._error(405, "METHOD_NOT_ALLOWED", "the stand-in only removes tags")
        with self.standin.lock:
            self.standin.other.append((self.command, self.path, status))

    do_GET = do_POST = do_PUT = do_PATCH = _other

    def do_DELETE(self):
        raw = self.path.split("?", 1)[0]
        parts = raw.split("/")
        # "", api, v2.0, projects, P, repositories, R, artifacts, REF, tags, TAG
        if (len(parts) != 11 or parts[1:4] != ["api", "v2.0", "projects"] or parts[5] != "repositories"
                or parts[7] != "artifacts" or parts[9] != "tags"):
            return self._other()
        user = self._user()
        project, repo_once = unquote(parts[4]), unquote(parts[6])
        reference, tag = unquote(parts[8]), unquote(parts[10])
        repository = unquote(repo_once)
        if user is None:
            status = self._error(401, "UNAUTHORIZED", "unauthorized")
        elif "/" in repo_once:
            # Single encoding: Harbor's router decodes it into extra path segments.
            status = self._error(404, "NOT_FOUND", "no route (repository must be URL-encoded twice)")
        else:
            status = self._remove(f"{project}/{repository}", reference, tag)
        with self.standin.lock:
            self.standin.calls.append(TagCall(raw, user, project, repository, reference, tag, status))

    def _remove(self, repo: str, reference: str, tag: str) -> int:
        d = self.standin.tag_dir(repo, tag)
        try:
            with open(os.path.join(d, "current", "link")) as f:
                current = f.read().strip()
        except OSError:
            return self._error(404, "NOT_FOUND", f"tag {tag} not found in {repo}")
        if current != reference:
            return self._error(404, "NOT_FOUND", f"tag {tag} is not on artifact {reference}")
        shutil.rmtree(d)
        self._reply(200)
        return 200
