"""The floor probe (per index: floor_probe.c through CProbe; the burst: Probe, below): a minimal client issuing exactly archmerge's request set
for one 2-arch index (cold: GET manifest x2, GET config blob x2, HEAD target,
PUT; warm: no config GETs), on kept-alive connections made before timing,
with a bearer token fetched before timing (archmerge caches one per
repository too). Serial: one connection, one request after another.
Parallel: the two manifest->config chains and the HEAD at once, each on its
own connection, the PUT after them. Nothing is checked beyond the status:
it is the floor."""

import base64
import hashlib
import http.client
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.parse

ACCEPT = ", ".join(["application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])
LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
UA = "floor-probe/1"


SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor_probe.c")


def build(work):
    """bench/floor_probe.c -> WORK/floor_probe (libcurl, Jansson: archmerge's own build deps)."""
    out = os.path.join(work, "floor_probe")
    subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-o", out, SRC,
                    "-lcurl", "-ljansson"], check=True)
    return out


class CProbe:
    """The per-index floor: floor_probe.c on three kept-alive connections, timed inside."""

    def __init__(self, binary, url, repo, cafile=None, token=None):
        self.repo = repo
        self.p = subprocess.Popen([binary, url, repo, token or "-", cafile or "-"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        self.last_us = None

    def _do(self, shape, version, warm, target, recheck):
        self.p.stdin.write(f"{shape} {1 if warm else 0} {version} {target or version} {1 if recheck else 0}\n")
        self.p.stdin.flush()
        ans = self.p.stdout.readline().strip()
        if not ans or ans.startswith("ERR"):
            raise RuntimeError(f"floor probe: {shape} {version}: {ans or 'exited'}")
        self.last_us = int(ans)

    def serial(self, version, warm, target=None, recheck=False):
        self._do("s", version, warm, target, recheck)

    def parallel(self, version, warm, target=None, recheck=False):
        self._do("p", version, warm, target, recheck)

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


class Conn:
    def __init__(self, url, cafile, token):
        u = urllib.parse.urlsplit(url)
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=cafile)
            self.c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
        else:
            self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        self.base = {"User-Agent": UA}
        if token:
            self.base["Authorization"] = "Bearer " + token
        self.c.connect()
        self.c.sock.setsockopt(6, 1, 1)   # TCP_NODELAY (http.client sets it too; be sure)

    def do(self, method, path, headers=None, body=None):
        h = dict(self.base, **(headers or {}))
        self.c.request(method, path, body=body, headers=h)
        r = self.c.getresponse()
        data = r.read()
        if r.status >= 400 and not (method == "HEAD" and r.status == 404):
            raise RuntimeError(f"floor probe: {method} {path}: {r.status} {data[:200]!r}")
        return r.status, r, data

    def close(self):
        self.c.close()


def token_for(tokens_realm, user, password, repo, cafile):
    """One pull,push token for repo (as archmerge fetches once and caches)."""
    u = urllib.parse.urlsplit(tokens_realm)
    c = http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(cafile=cafile))
    q = urllib.parse.urlencode([("service", "harbor-registry"), ("scope", f"repository:{repo}:pull,push")])
    cred = base64.b64encode(f"{user}:{password}".encode()).decode()
    c.request("GET", u.path + "?" + q, headers={"Authorization": "Basic " + cred})
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    return body.get("token") or body.get("access_token")


class Probe:
    """Connections for one repository: 3 for the parallel shape (conns[0] serves the serial one)."""

    def __init__(self, url, repo, cafile=None, token=None, n_conns=3):
        self.repo = repo
        self.conns = [Conn(url, cafile, token) for _ in range(n_conns)]

    def close(self):
        for c in self.conns:
            c.close()

    def chain(self, conn, tag, warm, arch):
        _, r, body = conn.do("GET", f"/v2/{self.repo}/manifests/{tag}", {"Accept": ACCEPT})
        m = json.loads(body)
        digest = r.getheader("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        platform = {"architecture": arch, "os": "linux"}
        if not warm:
            _, _, cfg = conn.do("GET", f"/v2/{self.repo}/blobs/{m['config']['digest']}")
            c = json.loads(cfg)
            platform = {"architecture": c["architecture"], "os": c["os"]}
        return {"mediaType": m["mediaType"], "digest": digest, "size": len(body), "platform": platform}

    def head(self, conn, version):
        st, _, _ = conn.do("HEAD", f"/v2/{self.repo}/manifests/{version}", {"Accept": ACCEPT})
        return st

    def put(self, conn, target, kids):
        doc = json.dumps({"schemaVersion": 2, "mediaType": LIST, "manifests": kids},
                         separators=(",", ":")).encode()
        conn.do("PUT", f"/v2/{self.repo}/manifests/{target}", {"Content-Type": LIST}, doc)

    def serial(self, version, warm, target=None):
        c = self.conns[0]
        kids = [self.chain(c, f"{version}-{a}", warm, a) for a in ("amd64", "arm64")]
        self.head(c, target or version)
        self.put(c, target or version, kids)

    def parallel(self, version, warm, target=None, gate=None, recheck=False):
        """gate: a semaphore bounding requests in flight (the burst's per-registry bound);
        recheck: both source HEADs at once after the PUT, as archmerge re-checks."""
        kids = [None, None, None]

        def run(i, fn):
            if gate:
                with gate:
                    kids[i] = fn()
            else:
                kids[i] = fn()
        fns = [lambda: self.chain(self.conns[0], f"{version}-amd64", warm, "amd64"),
               lambda: self.chain(self.conns[1], f"{version}-arm64", warm, "arm64"),
               lambda: self.head(self.conns[2], target or version)]
        jobs = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
        for j in jobs:
            j.start()
        for j in jobs:
            j.join()
        if gate:
            with gate:
                self.put(self.conns[0], target or version, kids[:2])
        else:
            self.put(self.conns[0], target or version, kids[:2])
        if recheck:
            fns = [lambda: self.head(self.conns[0], f"{version}-amd64"),
                   lambda: self.head(self.conns[1], f"{version}-arm64")]
            jobs = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
            for j in jobs:
                j.start()
            for j in jobs:
                j.join()


def burst(url, repo, versions, workers, max_concurrent, cafile=None, token=None, target=lambda v: v,
          recheck=False):
    """versions' indexes, `workers` at once, at most max_concurrent requests in flight
    (archmerge's workers and registries[].max_concurrent): seconds for all."""
    todo = list(versions)
    lock = threading.Lock()
    gate = threading.BoundedSemaphore(max_concurrent)
    probes = [Probe(url, repo, cafile, token) for _ in range(workers)]

    def work(p):
        while True:
            with lock:
                if not todo:
                    return
                v = todo.pop(0)
            p.parallel(v, False, target(v), gate, recheck)
    t0 = time.perf_counter()
    ts = [threading.Thread(target=work, args=(p,)) for p in probes]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.perf_counter() - t0
    for p in probes:
        p.close()
    return secs
