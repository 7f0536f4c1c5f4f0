"""A large world for the scale bench: N repositories in a real docker-registry,
each with VERSIONS versions x 2 architectures (amd64, arm64) of real small
images, seeded in a minute or two.

Shape (issue 25): 5 % of the groups miss one architecture (the last 2 of 40
versions of every repository have no arm64 tag), UNPUBLISHED complete groups
have no target tag, every other complete group is published with the exact
index archmerge publishes.

How it stays cheap: the two layers (one per architecture) and one config per
version and architecture are uploaded once, into the template repository
library/r0000; every other repository gets them by cross-repository mounts
(POST /v2/R/blobs/uploads/?mount=D&from=library/r0000), then its manifests by
PUT. archmerge itself publishes the template repository (`archmerge
reconcile`, the one-shot CLI) and a second one seeded the same way; their
index documents are compared byte for byte, and when they are the same (an
index holds only its children's descriptors, and the children are the same
bytes in every repository) those bytes are PUT to the other repositories.
This way the bench never writes archmerge's index format by hand.

Two ways to reach the other repositories: `http` (mounts and PUTs as above;
about 200 requests per repository, 123 s for 100 repositories on a 2-core
machine at load 10) and `copy` (the default): the registry's own link tree
of a repository seeded over HTTP (repositories/<name>/ under its
filesystem storage: _layers, _manifests, links to the shared blobs, no blob
data) hard-linked under each other name, then the unpublished groups' tag
directories removed. The registry reads those trees on every request (its
cache holds blob descriptors only), so what it serves is the same as after
the pushes; the copy is only faster.

Work runs on a thread pool, one kept-alive http.client connection per thread,
one repository per task. Everything lives under the caller's temporary
directory; nothing is cached elsewhere."""

import gzip
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))

from harness.images import make_layer, serialize  # noqa: E402
from harness.archmerge import render_libconfig, DEFAULT_RULE  # noqa: E402

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ACCEPT = ", ".join(["application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.oci.image.manifest.v1+json", DOCKER_MANIFEST])
ARCHS = ("amd64", "arm64")
TEMPLATE = "library/r0000"
HOST = "scale.example.com"
UA = "archmerge-bench-world/1"


def tmpfs_dir():
    """A memory file system for the registry's storage when there is one: a 1,000-repository
    world is some 250,000 small files, and a shared disk's metadata writes dominated seeding."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def repo_name(i):
    return f"library/r{i:04d}"


def version_name(i):
    return f"1.{i}.0"


class Conn:
    """One kept-alive connection to the registry (plain HTTP, loopback)."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        assert u.hostname.startswith("127."), "loopback only"
        self.host, self.port = u.hostname, u.port
        self.c = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.requests = 0

    def do(self, method, path, body=None, headers=None, ok=(200, 201, 202)):
        h = {"User-Agent": UA}
        h.update(headers or {})
        if body is not None:
            h["Content-Length"] = str(len(body))
        for attempt in (0, 1):
            try:
                self.c.request(method, path, body=body, headers=h)
                r = self.c.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise
        self.requests += 1
        if r.status not in ok:
            raise RuntimeError(f"world: {method} {path}: {r.status} {data[:200]!r}")
        return r, data

    def push_blob(self, repo, data):
        r, _ = self.do("POST", f"/v2/{repo}/blobs/uploads/", b"", ok=(202,))
        loc = urllib.parse.urlsplit(r.getheader("Location"))
        q = (loc.query + "&" if loc.query else "") + urllib.parse.urlencode({"digest": sha(data)})
        self.do("PUT", f"{loc.path}?{q}", data, {"Content-Type": "application/octet-stream"}, ok=(201,))

    def mount(self, repo, digest, src):
        q = urllib.parse.urlencode({"mount": digest, "from": src})
        self.do("POST", f"/v2/{repo}/blobs/uploads/?{q}", b"", ok=(201,))

    def put_manifest(self, repo, tag, body, media_type):
        self.do("PUT", f"/v2/{repo}/manifests/{tag}", body, {"Content-Type": media_type}, ok=(201,))

    def get_manifest(self, repo, tag):
        r, data = self.do("GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT}, ok=(200, 404))
        return (data, r.getheader("Content-Type")) if r.status == 200 else (None, None)

    def delete_tag(self, repo, tag):
        """Drop an index tag (by its digest: the index is tagged once per repository)."""
        r, _ = self.do("HEAD", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT}, ok=(200, 404))
        if r.status == 200:
            self.do("DELETE", f"/v2/{repo}/manifests/{r.getheader('Docker-Content-Digest')}", ok=(202,))

    def close(self):
        self.c.close()


def pool(url, tasks, threads, fn):
    """fn(conn, task) for every task on `threads` threads; returns the requests made."""
    lock = threading.Lock()
    todo = list(tasks)
    counts, errors = [], []

    def work():
        c = Conn(url)
        try:
            while True:
                with lock:
                    if not todo or errors:
                        return
                    t = todo.pop()
                fn(c, t)
        except Exception as exc:  # reported after the join
            errors.append(exc)
        finally:
            counts.append(c.requests)
            c.close()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts)


class ScaleWorld:
    """N repositories x `versions` versions; seed() pushes them, the attributes describe them."""

    def __init__(self, url, n_repos, versions=40, incomplete_per_repo=2, unpublished=50, threads=8):
        assert n_repos >= 3
        self.url, self.n, self.threads = url, n_repos, threads
        self.versions = [version_name(i) for i in range(versions)]
        self.incomplete = set(self.versions[versions - incomplete_per_repo:])   # no arm64 tag
        complete = [v for v in self.versions if v not in self.incomplete]
        # Unpublished groups: spread over the repositories after the two archmerge publishes.
        self.unpublished = set()
        k = 0
        while len(self.unpublished) < min(unpublished, (n_repos - 2) * len(complete)):
            self.unpublished.add((repo_name(2 + (k * (n_repos - 2)) // unpublished % (n_repos - 2)),
                                  complete[k % len(complete)]))
            k += 1
        self.repos = [repo_name(i) for i in range(n_repos)]
        self.layers, self.configs, self.manifests = {}, {}, {}
        for arch in ARCHS:
            tar = make_layer(f"scale/{arch}")
            self.layers[arch] = (gzip.compress(tar, mtime=0), sha(tar))    # (blob, diff_id)
        for v in self.versions:
            for arch in ARCHS:
                layer, diff_id = self.layers[arch]
                cfg = serialize({"architecture": arch, "os": "linux", "created": "2026-01-01T00:00:00Z",
                                 "config": {"Cmd": ["/hello"], "Env": ["PATH=/usr/bin:/bin"]},
                                 "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                                 "history": [{"created": "2026-01-01T00:00:00Z",
                                              "created_by": f"archmerge scale bench {v}"}]})
                self.configs[(v, arch)] = cfg
                self.manifests[(v, arch)] = serialize({
                    "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                    "config": {"mediaType": DOCKER_CONFIG, "digest": sha(cfg), "size": len(cfg)},
                    "layers": [{"mediaType": DOCKER_LAYER, "digest": sha(layer), "size": len(layer)}]})
        self.indexes = {}          # version -> (bytes, media type), as archmerge published them
        self.figures = {}

    # ---- what the world holds
    def tags(self):
        """Per-architecture tags and published index tags."""
        return self.n * sum(1 if v in self.incomplete else 2 for v in self.versions) + self.published_groups()

    def groups(self):
        return self.n * len(self.versions)

    def published_groups(self):
        return self.n * (len(self.versions) - len(self.incomplete)) - len(self.unpublished)

    def arch_tags(self, v):
        return [a for a in ARCHS if not (v in self.incomplete and a == "arm64")]

    # ---- seeding
    def _sources(self, c, repo, mount):
        for arch in ARCHS:
            layer = self.layers[arch][0]
            c.mount(repo, sha(layer), TEMPLATE) if mount else c.push_blob(repo, layer)
        for v in self.versions:
            for arch in self.arch_tags(v):
                cfg = self.configs[(v, arch)]
                c.mount(repo, sha(cfg), TEMPLATE) if mount else c.push_blob(repo, cfg)
                c.put_manifest(repo, f"{v}-{arch}", self.manifests[(v, arch)], DOCKER_MANIFEST)

    def _rest(self, c, repo):
        self._sources(c, repo, mount=True)
        for v, (body, mt) in self.indexes.items():
            if (repo, v) not in self.unpublished:
                c.put_manifest(repo, v, body, mt)

    def _copy(self, storage):
        """The link tree of repository 1 (sources and indexes published) under every other name."""
        base = os.path.join(storage, "docker", "registry", "v2", "repositories")
        src = os.path.join(base, *repo_name(1).split("/"))
        dirs, files = [], []
        for d, _, fs in os.walk(src):
            rel = os.path.relpath(d, src)
            dirs.append(rel)
            files += [os.path.join(rel, f) for f in fs]
        for repo in self.repos[2:]:
            dst = os.path.join(base, *repo.split("/"))
            for d in dirs:
                os.makedirs(os.path.join(dst, d), exist_ok=True)
            # Hard links: every link file names content by its digest, and the tags that
            # a pass writes again (the unpublished ones) are removed below, not shared.
            for f in files:
                os.link(os.path.join(src, f), os.path.join(dst, f))
        for repo, v in self.unpublished:
            shutil.rmtree(os.path.join(base, *repo.split("/"), "_manifests", "tags", v))
        return 0

    def seed(self, archmerge_bin, work, storage=None):
        """Push the world; returns {phase: seconds} (also kept in self.figures).
        storage: the registry's filesystem root directory: copy mode; None: http mode."""
        t0 = time.monotonic()
        c = Conn(self.url)
        self._sources(c, TEMPLATE, mount=False)
        self._sources(c, repo_name(1), mount=True)
        t1 = time.monotonic()
        cfg = self.cli_config(work, [TEMPLATE, repo_name(1)])
        p = subprocess.run([archmerge_bin, "reconcile", "-c", cfg, "--json"], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"world: archmerge reconcile exited {p.returncode}: {p.stderr[-2000:]}")
        same = True
        for v in self.versions:
            if v in self.incomplete:
                continue
            a, mt = c.get_manifest(TEMPLATE, v)
            b, _ = c.get_manifest(repo_name(1), v)
            if a is None or b is None:
                raise RuntimeError(f"world: archmerge did not publish {v}")
            same = same and a == b
            self.indexes[v] = (a, mt)
        c.close()
        if not same:
            raise RuntimeError("world: archmerge's index bytes differ between repositories; "
                               "copying them would not give archmerge's index")
        t2 = time.monotonic()
        if storage is not None:
            c = Conn(self.url)       # repository 1 gets the indexes; its tree is then copied
            for v, (body, mt) in self.indexes.items():
                c.put_manifest(repo_name(1), v, body, mt)
            c.close()
            reqs = self._copy(storage)
        else:
            reqs = pool(self.url, self.repos[2:], self.threads, self._rest)
        t3 = time.monotonic()
        self.figures = {"mode": "http" if storage is None else "copy", "template_s": t1 - t0,
                        "archmerge_publish_s": t2 - t1, "rest_s": t3 - t2, "total_s": t3 - t0,
                        "rest_requests": reqs, "same_index_bytes": same}
        return self.figures

    def cli_config(self, work, repositories, **reconcile):
        path = os.path.join(work, f"world-{len(repositories)}.conf")
        state = os.path.join(work, "world-state")
        os.makedirs(state, mode=0o700, exist_ok=True)
        rec = {"repositories": list(repositories)}
        rec.update(reconcile)
        text = render_libconfig({
            "server": {"listen": "127.0.0.1:1", "plain_http": True, "allow_unauthenticated": True},
            "registries": [{"host": HOST, "url": self.url}],
            "rules": [dict(DEFAULT_RULE)], "state_dir": state, "reconcile": rec})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def unpublish(self):
        """Take the unpublished groups' target tags away again (after a pass published them)."""
        c = Conn(self.url)
        for repo, v in sorted(self.unpublished):
            c.delete_tag(repo, v)
        c.close()


if __name__ == "__main__":
    # python3 bench/world.py N [http|copy]: seed a throwaway registry and print the figures.
    import tempfile
    from harness.registry import Registry
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    work = tempfile.mkdtemp(prefix="archmerge-world-", dir=tmpfs_dir())
    try:
        reg = Registry(os.path.join(work, "registry")).start()
        try:
            w = ScaleWorld(reg.url, n)
            mode = sys.argv[2] if len(sys.argv) > 2 else "copy"
            print(json.dumps(w.seed(os.path.join(os.path.dirname(HERE), "archmerge"), work,
                                    reg.storage if mode == "copy" else None), indent=2))
            c = Conn(reg.url)
            _, data = c.do("GET", f"/v2/{w.repos[-1]}/tags/list")
            print(f"{w.repos[-1]}: {len(json.loads(data)['tags'])} tags listed by the registry")
            print(f"{w.tags()} tags, {w.groups()} groups, {w.published_groups()} published")
        finally:
            reg.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
