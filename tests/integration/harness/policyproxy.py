"""An HTTPS reverse proxy on 127.0.0.1 in front of the real registry that
refuses manifest reads the way Harbor's project policies do.

It follows Harbor's own code (goharbor/harbor):
  - src/server/registry/route.go: GET and HEAD of /v2/<repo>/manifests/<ref>
    pass through the content-trust and then the vulnerability middleware;
    blob reads, tag lists and writes are not checked;
  - src/server/middleware/contenttrust/contentrust.go: "Cosign" / "Notation"
    signature required: an artifact without a signature accessory of that
    type is refused with "The image is not signed by cosign." (or notation);
  - src/server/middleware/vulnerable/vulnerable.go: "Prevent vulnerable
    images from running": no report yet, a scan not finished ("Running"),
    or vulnerabilities at or above the project's severity refuse the read,
    with Harbor's exact sentences; indexes of images are exempt;
  - src/server/middleware/util/util.go SkipPolicyChecking: signatures
    themselves are exempt, and so is a client whose User-Agent contains
    "cosign" (or, for content trust, "notation") holding a push-capable token;
  - src/lib/http/error.go: PROJECTPOLICYVIOLATION is answered 412 with
    {"errors":[{"code":"PROJECTPOLICYVIOLATION","message":...}]}; a HEAD
    gets the status and headers without the body;
  - src/server/middleware/immutable/pushmf.go: a PUT to an existing tag an
    immutability rule covers is refused with 412 PRECONDITION, even when it
    would store the same or more (a signature appended to sha256-<hex>.sig).

    proxy = PolicyProxy(upstream_url, cafile, cert, key).start()
    proxy.url                               -> https://127.0.0.1:PORT
    proxy.cosign = True                     "Cosign" signature required
    proxy.notation = True                   "Notation" signature required
    proxy.vulnerability = True              prevent vulnerable images (severity proxy.severity, "High")
    proxy.set_scan(digest, "unscanned" | "running" | "clean" | ("vulnerable", N))
    proxy.default_scan                      state of digests never set ("unscanned")
    proxy.immutable = re.compile(r"...")    tags an immutability rule covers (existing ones refuse PUTs)
    proxy.refusals                          [(monotonic time, method, path, message)]
    proxy.last_refusal(digest)              monotonic time of the last refusal naming digest, or None

Signed or not is read from the registry itself: an image is signed when a
tag sha256-<hex>.sig exists in its repository (what cosign writes; Harbor
records it as the image's accessory). Fault modes of FaultProxy still apply.
"""

import base64
import json
import re
import threading
import time
import http.client
from typing import List, Optional, Tuple

from .faultproxy import FaultProxy
from .util import client_tls_context

MANIFEST_PATH = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/?]+)$")
SIG_TAG = re.compile(r"^sha256-[0-9a-f]{64}\.sig$")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
ACCEPT_ALL = ", ".join(INDEX_TYPES + ("application/vnd.oci.image.manifest.v1+json",
                                      "application/vnd.docker.distribution.manifest.v2+json"))


def _policy_clause(severity: str) -> str:
    return f"due to configured policy in 'Prevent images with vulnerability severity of \"{severity}\" or higher from running.' "


class PolicyProxy(FaultProxy):
    def __init__(self, upstream_url: str, cafile: str, cert: str, key: str, port: Optional[int] = None):
        super().__init__(upstream_url, cafile, cert, key, port)
        self.cosign = False
        self.notation = False
        self.vulnerability = False
        self.severity = "High"
        self.default_scan = "unscanned"
        self.immutable = None
        self._scans = {}
        self.refusals: List[Tuple[float, str, str, str]] = []
        self._plock = threading.Lock()

    # ------------------------------------------------------------ control
    def set_scan(self, digest: str, state):
        with self._plock:
            self._scans[digest] = state

    def scan_state(self, digest: str):
        with self._plock:
            return self._scans.get(digest, self.default_scan)

    def last_refusal(self, needle: str) -> Optional[float]:
        with self._plock:
            times = [t for t, _, path, _ in self.refusals if needle in path]
        return max(times) if times else None

    # ------------------------------------------------------------ Harbor's sentences
    def vulnerability_message(self, state) -> Optional[str]:
        clause = _policy_clause(self.severity)
        if state == "clean":
            return None
        if state == "unscanned":
            return ("current image without vulnerability scanning cannot be pulled " + clause +
                    "To continue with pull, please contact your project administrator for help.")
        if state == "running":
            return ("current image with \"Running\" status of vulnerability scanning cannot be pulled " + clause +
                    "To continue with pull, please contact your project administrator for help.")
        kind, count = state
        assert kind == "vulnerable", state
        thing = "vulnerabilities" if count > 1 else "vulnerability"
        return (f"current image with {count} {thing} cannot be pulled " + clause +
                "To continue with pull, please contact your project administrator to exempt matched "
                "vulnerabilities through configuring the CVE allowlist.")

    # ------------------------------------------------------------ the check
    def _upstream(self):
        if self.upstream_tls:
            return http.client.HTTPSConnection(self.upstream_host, self.upstream_port, timeout=30,
                                               context=client_tls_context(self.cafile))
        return http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)

    def _head(self, repo: str, ref: str, auth: Optional[str]):
        """(status, digest, media type) of repo:ref as the registry itself answers the client's credentials."""
        c = self._upstream()
        try:
            headers = {"Accept": ACCEPT_ALL, "Host": f"{self.upstream_host}:{self.upstream_port}"}
            if auth:
                headers["Authorization"] = auth
            c.request("HEAD", f"/v2/{repo}/manifests/{ref}", headers=headers)
            r = c.getresponse()
            r.read()
            return r.status, r.getheader("Docker-Content-Digest") or "", \
                (r.getheader("Content-Type") or "").split(";")[0].strip()
        finally:
            c.close()

    @staticmethod
    def _push_capable(auth: Optional[str], repo: str) -> bool:
        """A bearer token (JWT) whose access claim grants push on repo."""
        if not auth or not auth.lower().startswith("bearer "):
            return False
        parts = auth.split(" ", 1)[1].strip().split(".")
        if len(parts) != 3:
            return False
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except ValueError:
            return False
        return any(a.get("type") == "repository" and a.get("name") == repo and "push" in a.get("actions", [])
                   for a in claims.get("access", []))

    def refusal(self, method: str, path: str, headers) -> Optional[str]:
        """Harbor's message when a read of path is refused, else None."""
        m = MANIFEST_PATH.match(path.split("?", 1)[0])
        if method not in ("GET", "HEAD") or m is None or not (self.cosign or self.notation or self.vulnerability):
            return None
        repo, ref = m.group("repo"), m.group("ref")
        if SIG_TAG.match(ref):
            return None                          # a signature itself: exempt
        h = {k.lower(): v for k, v in headers}
        auth, agent = h.get("authorization"), h.get("user-agent", "")
        status, digest, media_type = self._head(repo, ref, auth)
        if status != 200 or not digest.startswith("sha256:"):
            return None                          # the registry answers (401, 404) as it would anyway
        signer = self._push_capable(auth, repo)
        sig = "sha256-" + digest.split(":", 1)[1] + ".sig"
        # contenttrust.ContentTrust() runs first (route.go), then vulnerable.Middleware().
        for enabled, name in ((self.cosign, "cosign"), (self.notation, "notation")):
            if not enabled or (signer and name in agent):
                continue
            if self._head(repo, sig, auth)[0] != 200:
                return f"The image is not signed by {name}."
        if self.vulnerability and not (signer and "cosign" in agent) and media_type not in INDEX_TYPES:
            return self.vulnerability_message(self.scan_state(digest))
        return None

    def immutable_refusal(self, method: str, path: str, headers) -> Optional[str]:
        m = MANIFEST_PATH.match(path.split("?", 1)[0])
        if method != "PUT" or m is None or self.immutable is None or not self.immutable.search(m.group("ref")):
            return None
        auth = {k.lower(): v for k, v in headers}.get("authorization")
        if self._head(m.group("repo"), m.group("ref"), auth)[0] != 200:
            return None                          # the rule covers existing tags only
        return f"Failed to process request due to '{m.group('repo').split('/', 1)[-1]}:{m.group('ref')}' configured as immutable."

    # ------------------------------------------------------------ the answer
    def _forward(self, conn, upstream, method, path, headers, body):
        code, message = "PRECONDITION", self.immutable_refusal(method, path, headers)
        if message is None:
            code, message = "PROJECTPOLICYVIOLATION", self.refusal(method, path, headers)
        if message is None:
            return super()._forward(conn, upstream, method, path, headers, body)
        with self._plock:
            self.refusals.append((time.monotonic(), method, path, message))
        data = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._send(conn, 412, "Precondition Failed",
                   [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))],
                   data, head=(method == "HEAD"))
        return upstream
