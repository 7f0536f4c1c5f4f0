"""A small OCI distribution client for tests: bearer-token flow, blob and
manifest push, manifest get/head/delete, and builders for tiny images, image
indexes / manifest lists and buildx-style (image + attestation) indexes.

Only urllib and ssl; it trusts exactly the CA file it is given.
"""

import base64
import gzip
import io
import json
import re
import tarfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .util import client_tls_context, sha256_digest

# Media types
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
IN_TOTO = "application/vnd.in-toto+json"

MANIFEST_ACCEPT = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST]
FORMATS = {
    # fmt -> (manifest, config, layer, index) media types
    "docker": (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LIST),
    "oci": (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER, OCI_INDEX),
}
ATTESTATION_REF_TYPE = "vnd.docker.reference.type"
ATTESTATION_REF_DIGEST = "vnd.docker.reference.digest"


class RegistryError(Exception):
    def __init__(self, method, url, status, body=b"", headers=None):
        self.method, self.url, self.status, self.body = method, url, status, body
        self.headers = headers or {}
        super().__init__(f"{method} {url} -> {status}: {body[:300]!r}")

    @property
    def error_codes(self) -> List[str]:
        try:
            return [e.get("code") for e in json.loads(self.body).get("errors", [])]
        except (ValueError, AttributeError):
            return []


@dataclass
class Response:
    status: int
    headers: Dict[str, str]   # lower-cased names
    body: bytes


@dataclass
class Manifest:
    """A manifest as read back from the registry."""
    body: bytes
    content_type: str
    digest: str

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Pushed:
    """A manifest (image, attestation or index) that was pushed."""
    repo: str
    ref: str                  # tag, or the digest when pushed by digest
    digest: str
    size: int
    media_type: str
    body: bytes
    platform: Optional[dict] = None       # for images: from the config
    config_digest: Optional[str] = None
    layer_digests: List[str] = field(default_factory=list)
    annotations: Optional[dict] = None    # descriptor annotations (attestations)

    @property
    def json(self):
        return json.loads(self.body)

    def descriptor(self, with_platform: bool = True) -> dict:
        d = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if with_platform and self.platform:
            d["platform"] = dict(self.platform)
        return d


@dataclass
class PushedBuildx:
    """Result of push_buildx_index: the index plus its children."""
    index: Pushed
    images: List[Pushed]
    attestations: List[Pushed]

    @property
    def digest(self):
        return self.index.digest

    @property
    def image(self) -> Pushed:          # single-platform convenience
        return self.images[0]

    @property
    def attestation(self) -> Optional[Pushed]:
        return self.attestations[0] if self.attestations else None


def platform_dict(arch: str, os: str = "linux", variant: Optional[str] = None,
                  os_version: Optional[str] = None, os_features: Optional[Sequence[str]] = None) -> dict:
    p = {"architecture": arch, "os": os}
    if os_version:
        p["os.version"] = os_version
    if os_features:
        p["os.features"] = list(os_features)
    if variant:
        p["variant"] = variant
    return p


def serialize(obj) -> bytes:
    """The exact bytes pushed (and hashed) for a manifest/index/config."""
    return json.dumps(obj, indent=3).encode()


def make_layer(salt: str) -> bytes:
    """A tiny deterministic gzip'd tar holding one file; content depends on salt."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = f"archmerge test layer {salt}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _parse_challenge(header: str):
    """'Bearer realm="..",service="..",scope=".."' -> ('bearer', {params})."""
    scheme, _, rest = header.strip().partition(" ")
    params = dict((k.lower(), v) for k, v in re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class RegistryClient:
    """Distribution client. `base_url` like https://127.0.0.1:5000."""

    def __init__(self, base_url: str, username: Optional[str] = None, password: Optional[str] = None,
                 cafile: Optional[str] = None, timeout: float = 10.0):
        host = urllib.parse.urlsplit(base_url).hostname or ""
        assert host.startswith("127.") or host == "localhost", "loopback only"
        self.base_url = base_url.rstrip("/")
        self.username, self.password = username, password
        self.cafile = cafile
        self.timeout = timeout
        self._ctx = client_tls_context(cafile) if base_url.startswith("https") else None
        self._tokens: Dict[str, str] = {}       # scope key -> bearer token
        self._lock = threading.Lock()
        self.token_fetches = 0
        self.requests: List[tuple] = []          # (method, path, status), for debugging

    # ------------------------------------------------------------ transport
    def _open(self, method, url, body, headers) -> Response:
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._ctx) as r:
                return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())

    def _fetch_token(self, params: dict) -> str:
        realm = params["realm"]
        assert urllib.parse.urlsplit(realm).hostname.startswith("127."), f"refusing realm {realm}"
        query = [("service", params.get("service", ""))]
        query += [("scope", s) for s in params.get("scope", "").split(" ") if s]
        headers = {}
        if self.username is not None:
            cred = f"{self.username}:{self.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
        r = self._open("GET", realm + "?" + urllib.parse.urlencode(query), None, headers)
        self.token_fetches += 1
        if r.status != 200:
            raise RegistryError("GET", realm, r.status, r.body, r.headers)
        reply = json.loads(r.body)
        return reply.get("token") or reply.get("access_token")

    @staticmethod
    def _scope_key(method: str, path: str) -> str:
        m = re.match(r"/v2/(.+?)/(manifests|blobs|tags)/", path)
        repo = m.group(1) if m else ""
        kind = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(method, "push")
        return f"{repo}:{kind}"

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[dict] = None, ok=(200, 201, 202, 204)) -> Response:
        """Request with the bearer flow: on 401 fetch a token for the challenge
        and retry once. Raises RegistryError unless the status is in `ok`."""
        url = path if path.startswith("http") else self.base_url + path
        hdrs = dict(headers or {})
        key = self._scope_key(method, urllib.parse.urlsplit(url).path)
        with self._lock:
            token = self._tokens.get(key)
        if token:
            hdrs["Authorization"] = "Bearer " + token
        r = self._open(method, url, body, hdrs)
        if r.status == 401 and "www-authenticate" in r.headers:
            scheme, params = _parse_challenge(r.headers["www-authenticate"])
            if scheme == "bearer" and "realm" in params:
                token = self._fetch_token(params)
                with self._lock:
                    self._tokens[key] = token
                hdrs["Authorization"] = "Bearer " + token
            elif scheme == "basic" and self.username is not None:
                cred = f"{self.username}:{self.password or ''}".encode()
                hdrs["Authorization"] = "Basic " + base64.b64encode(cred).decode()
            r = self._open(method, url, body, hdrs)
        self.requests.append((method, urllib.parse.urlsplit(url).path, r.status))
        if ok is not None and r.status not in ok:
            raise RegistryError(method, url, r.status, r.body, r.headers)
        return r

    # ------------------------------------------------------------ blobs
    def blob_exists(self, repo: str, digest: str) -> bool:
        return self.request("HEAD", f"/v2/{repo}/blobs/{digest}", ok=(200, 404)).status == 200

    def push_blob(self, repo: str, data: bytes) -> str:
        """Monolithic upload (POST, then PUT ?digest=); skipped if present."""
        digest = sha256_digest(data)
        if self.blob_exists(repo, digest):
            return digest
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", b"", {"Content-Length": "0"}, ok=(202,))
        location = urllib.parse.urljoin(self.base_url + "/", r.headers["location"])
        sep = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{sep}digest={urllib.parse.quote(digest)}", data,
                     {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}, ok=(201,))
        return digest

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount; True if mounted (201), False if 202."""
        q = urllib.parse.urlencode({"mount": digest, "from": from_repo})
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/?{q}", b"", {"Content-Length": "0"}, ok=(201, 202))
        if r.status == 202:  # abandon the upload session that was opened instead
            loc = urllib.parse.urljoin(self.base_url + "/", r.headers["location"])
            self.request("DELETE", loc, ok=None)
        return r.status == 201

    def get_blob(self, repo: str, digest: str) -> bytes:
        return self.request("GET", f"/v2/{repo}/blobs/{digest}", ok=(200,)).body

    # ------------------------------------------------------------ manifests
    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        """PUT exactly `body`; checks the registry's digest against ours."""
        digest = sha256_digest(body)
        r = self.request("PUT", f"/v2/{repo}/manifests/{ref}", body,
                         {"Content-Type": media_type, "Content-Length": str(len(body))}, ok=(201,))
        got = r.headers.get("docker-content-digest")
        if got and got != digest:
            raise AssertionError(f"registry digest {got} != local {digest}")
        return digest

    def get_manifest(self, repo: str, ref: str, accept: Sequence[str] = MANIFEST_ACCEPT) -> Optional[Manifest]:
        """GET with a full Accept list; None on 404."""
        r = self.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": ", ".join(accept)},
                         ok=(200, 404))
        if r.status == 404:
            return None
        digest = sha256_digest(r.body)
        assert r.headers.get("docker-content-digest", digest) == digest, "digest header mismatch"
        return Manifest(r.body, r.headers.get("content-type", ""), digest)

    def head_manifest(self, repo: str, ref: str, accept: Sequence[str] = MANIFEST_ACCEPT) -> Optional[dict]:
        """{'digest', 'media_type', 'size'} or None on 404."""
        r = self.request("HEAD", f"/v2/{repo}/manifests/{ref}", headers={"Accept": ", ".join(accept)},
                         ok=(200, 404))
        if r.status == 404:
            return None
        return {"digest": r.headers.get("docker-content-digest"), "media_type": r.headers.get("content-type"),
                "size": int(r.headers.get("content-length", 0))}

    def delete_manifest(self, repo: str, ref: str) -> str:
        """Delete by digest (a tag is resolved first; that drops every tag on it)."""
        digest = ref
        if not ref.startswith("sha256:"):
            head = self.head_manifest(repo, ref)
            if head is None:
                raise RegistryError("HEAD", f"/v2/{repo}/manifests/{ref}", 404)
            digest = head["digest"]
        self.request("DELETE", f"/v2/{repo}/manifests/{digest}", ok=(202,))
        return digest

    def list_tags(self, repo: str) -> List[str]:
        r = self.request("GET", f"/v2/{repo}/tags/list", ok=(200, 404))
        return [] if r.status == 404 else sorted(json.loads(r.body).get("tags") or [])

    # ------------------------------------------------------------ builders
    def push_image(self, repo: str, tag: Optional[str], *, arch: str, os: str = "linux",
                   variant: Optional[str] = None, os_version: Optional[str] = None,
                   os_features: Optional[Sequence[str]] = None, fmt: str = "docker",
                   salt: str = "") -> Pushed:
        """Push a one-layer single-platform image; tag=None pushes by digest.

        arch/os/variant/os.version/os.features go into the config blob as given
        (they may deliberately disagree with the tag). Content is deterministic
        for the same (platform, fmt, salt): pass a new salt for new digests.
        """
        manifest_type, config_type, layer_type, _ = FORMATS[fmt]
        tar = make_layer(f"{arch}/{os}/{variant}/{salt}")
        layer = gzip.compress(tar, mtime=0)
        platform = platform_dict(arch, os, variant, os_version, os_features)
        config = dict(platform)
        config.update({
            "created": "2026-01-01T00:00:00Z",
            "config": {"Cmd": ["/hello"], "Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
            "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"archmerge test {salt}"}],
        })
        config_body = serialize(config)
        layer_digest = self.push_blob(repo, layer)
        config_digest = self.push_blob(repo, config_body)
        manifest = {
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": config_digest, "size": len(config_body)},
            "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": len(layer)}],
        }
        body = serialize(manifest)
        digest = sha256_digest(body)
        self.put_manifest(repo, tag or digest, body, manifest_type)
        return Pushed(repo, tag or digest, digest, len(body), manifest_type, body, platform=platform,
                      config_digest=config_digest, layer_digests=[layer_digest])

    def push_index(self, repo: str, tag: Optional[str], children: Sequence, *, media_type: str = OCI_INDEX,
                   annotations: Optional[dict] = None) -> Pushed:
        """Push an index / manifest list over children (Pushed or descriptor dicts,
        already in `repo`), in the given order."""
        descs = [c.descriptor() if isinstance(c, Pushed) else dict(c) for c in children]
        index = {"schemaVersion": 2, "mediaType": media_type, "manifests": descs}
        if annotations:
            index["annotations"] = dict(annotations)
        body = serialize(index)
        digest = sha256_digest(body)
        self.put_manifest(repo, tag or digest, body, media_type)
        return Pushed(repo, tag or digest, digest, len(body), media_type, body)

    def push_attestation(self, repo: str, image: Pushed, salt: str = "") -> Pushed:
        """Push (by digest) a buildx-style provenance attestation for `image`."""
        statement = {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"name": f"pkg:docker/{repo}", "digest": {"sha256": image.digest.split(":", 1)[1]}}],
            "predicate": {"builder": {"id": ""}, "buildType": "https://mobyproject.org/buildkit@v1",
                          "metadata": {"archmerge-test-salt": salt}},
        }
        statement_body = json.dumps(statement).encode()
        statement_digest = self.push_blob(repo, statement_body)
        config_body = serialize({"architecture": "unknown", "os": "unknown", "config": {},
                                 "rootfs": {"type": "layers", "diff_ids": [statement_digest]}})
        config_digest = self.push_blob(repo, config_body)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_body)},
            "layers": [{"mediaType": IN_TOTO, "digest": statement_digest, "size": len(statement_body),
                        "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}],
        }
        body = serialize(manifest)
        digest = self.put_manifest(repo, sha256_digest(body), body, OCI_MANIFEST)
        return Pushed(repo, digest, digest, len(body), OCI_MANIFEST, body,
                      platform={"architecture": "unknown", "os": "unknown"}, config_digest=config_digest,
                      layer_digests=[statement_digest],
                      annotations={ATTESTATION_REF_DIGEST: image.digest,
                                   ATTESTATION_REF_TYPE: "attestation-manifest"})

    def push_buildx_index(self, repo: str, tag: str, *, arch: Optional[str] = None, os: str = "linux",
                          variant: Optional[str] = None, os_version: Optional[str] = None,
                          os_features: Optional[Sequence[str]] = None, platforms: Optional[Sequence[dict]] = None,
                          fmt: str = "oci", provenance: bool = True, salt: str = "") -> PushedBuildx:
        """Push what buildx 0.10+ pushes for `--platform X --push`: the image
        manifest(s) by digest, one attestation manifest per image by digest,
        then the OCI index by tag (images first, then attestations).

        One platform via arch/os/variant/..., or several via
        platforms=[{"arch": "amd64", "variant": None, ...}, ...].
        """
        if platforms is None:
            platforms = [dict(arch=arch, os=os, variant=variant, os_version=os_version, os_features=os_features)]
        images = [self.push_image(repo, None, fmt=fmt, salt=salt, **p) for p in platforms]
        attestations = [self.push_attestation(repo, img, salt) for img in images] if provenance else []
        index = self.push_index(repo, tag, images + attestations, media_type=OCI_INDEX)
        return PushedBuildx(index, images, attestations)
