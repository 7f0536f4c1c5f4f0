"""Per-index times, every tool on the same registry, round-robin with the
order rotated each index: archmerge (cold and warm), the floor probe
(serial/parallel, cold/warm) and the peers present."""

import http.client
import json
import re
import ssl
import statistics
import time

import floor
import peers
from env import LogTail, log_time, ROBOT


class Tool:
    def __init__(self, key, name, repo, run, note=None):
        self.key, self.name, self.repo, self.run, self.note = key, name, repo, run, note
        self.samples = []


def stats(xs):
    return (statistics.median(xs), min(xs), max(xs)) if xs else (None, None, None)


class Latency:
    def __init__(self, world, am, work, n, repeats, only_peers=None):
        self.w, self.am, self.work = world, am, work
        self.n, self.repeats = n, repeats
        self.only_peers = only_peers
        self.tail = LogTail(am.log_path)
        self.conn = None
        self.requests = {}      # (mode, key) -> [requests per index]
        self.probe_bin = floor.build(work)

    # ------------------------------------------------------------ archmerge
    def archmerge(self, mode, repo, v, pair):
        """One webhook (the last architecture's; both are present): its 202 -> `published`."""
        payload, ct = self.w.event(mode, repo, pair[1].digest, f"{v}-arm64")
        status = self.webhook(json.dumps(payload).encode(), ct)
        t1 = time.time()
        if status != 202:
            raise RuntimeError(f"webhook answered {status}")
        host = self.w.regs and {"plain": "plain.example.com", "tls": "harbor.example.com"}[mode]
        line = self.tail.wait(r"group=" + re.escape(f"{host}/{repo}:{v}") + r" .*result=published")
        # the log's clock has ms resolution, truncated: +0.5 ms is its mean error
        return (log_time(line) + 0.0005 - t1) * 1000.0

    def webhook(self, body, ct):
        """POST on one kept-alive HTTPS connection (as Harbor's job service keeps one):
        no handshake or close competing with the assembly it starts."""
        path = self.am.webhook_url.split(str(self.am.port), 1)[1]
        for attempt in (1, 2):
            if self.conn is None:
                ctx = ssl.create_default_context(cafile=self.w.pki.ca_cert)
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.am.port, timeout=10, context=ctx)
            try:
                self.conn.request("POST", path, body=body,
                                  headers={"Content-Type": ct, "Authorization": self.w.secret})
                r = self.conn.getresponse()
                r.read()
                return r.status
            except (OSError, http.client.HTTPException):
                # archmerge closed the idle keep-alive connection: once more on a new one
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise

    # ------------------------------------------------------------ tools
    def tools(self, mode):
        w = self.w
        out = []
        url = w.regs[mode].url
        ca = w.pki.ca_cert if mode == "tls" else None

        def token(repo):
            return floor.token_for(w.tokens.realm, ROBOT, w.users[ROBOT], repo, ca) if mode == "tls" else None
        replicas = (f", server.replicas = {self.w.replicas}" if self.w.replicas > 1
                    else ", server.single_writer = true" if self.w.single_writer else ", default configuration")
        for key, name in (("am-cold", f"archmerge, cold (configs not cached){replicas}"),
                          ("am-warm", f"archmerge, warm (configs cached){replicas}")):
            repo = f"library/{key}-{mode}"
            out.append(Tool(key, name, repo, None))
        floors = [
            ("fl-ser-cold", "floor: cold 6 requests, serial, one warm connection", "serial", False, False),
            ("fl-par-cold", "floor: cold 6 requests, chains + HEAD in parallel", "parallel", False, False),
            ("fl-rc-cold", "floor: cold 6 + source re-check HEAD x2 (the default: 8), parallel", "parallel",
             False, True),
            ("fl-ser-warm", "floor: warm 4 requests, serial", "serial", True, False),
            ("fl-par-warm", "floor: warm 4 requests, parallel", "parallel", True, False),
            ("fl-rc-warm", "floor: warm 4 + re-check HEAD x2 (the default: 6), parallel", "parallel", True,
             True)]
        # the floor with the re-check HEADs when archmerge makes them (the default; not with --single-writer)
        for key, name, shape, warm, recheck in (f for f in floors if w.recheck or not f[4]):
            repo = f"library/{key}-{mode}"
            probe = floor.CProbe(self.probe_bin, url, repo, ca, token(repo))
            fn = getattr(probe, shape)
            out.append(Tool(key, name, repo, (lambda fn, warm, rc: lambda v: fn(v, warm, recheck=rc))(
                fn, warm, recheck)))
            out[-1].probe = probe
        for cls in peers.ALL:
            if self.only_peers is not None and cls.__name__.lower() not in self.only_peers:
                continue
            p = cls(w, self.work)
            repo = f"library/{cls.__name__.lower()}-{mode}"
            note = p.available(mode)
            out.append(Tool(cls.__name__.lower(), p.name, repo,
                            (lambda p, repo: lambda v: p.run(mode, repo, v))(p, repo), note))
        return out

    def versions(self):
        return [f"{r}.{i}" for r in range(self.repeats) for i in range(self.n)]

    def prepare(self, mode, tools):
        """Every image pushed before timing; warm-up index per tool (token, connections)."""
        vs = self.versions() + ["w.0"]
        self.pairs = {}
        for t in tools:
            if t.note:
                continue
            if t.key.endswith("warm"):
                # warm: the same content as an untimed earlier index (p<version>)
                salt = (lambda repo: lambda v: f"{repo}/{v.lstrip('p')}")(t.repo)
                pre = self.w.push_pairs(mode, t.repo, ["p" + v for v in vs], salt)
                self.pairs[t.key] = self.w.push_pairs(mode, t.repo, vs, salt)
                self.pairs[t.key + "/pre"] = pre
            else:
                self.pairs[t.key] = self.w.push_pairs(mode, t.repo, vs, lambda v, r=t.repo: f"{r}/{v}")
        for t in tools:
            if t.note:
                continue
            if t.key == "am-warm":
                for v in vs:
                    self.archmerge(mode, t.repo, "p" + v, self.pairs["am-warm/pre"]["p" + v])
            elif t.key.startswith("fl-") and t.key.endswith("warm"):
                for v in vs:
                    t.probe.serial("p" + v, False)   # the same content read once cold (untimed)
            try:
                self.one(mode, t, "w.0")
            except RuntimeError as exc:
                if t.key.startswith(("am-", "fl-")):
                    raise
                t.note = f"failed: {str(exc)[-200:]}"

    def one(self, mode, t, v):
        if t.key.startswith("am-"):
            return self.archmerge(mode, t.repo, v, self.pairs[t.key][v])
        t0 = time.perf_counter()
        t.run(v)
        if getattr(t, "probe", None) is not None:
            return t.probe.last_us / 1000.0     # timed inside the probe
        return (time.perf_counter() - t0) * 1000.0

    def measure(self, mode):
        tools = self.tools(mode)
        self.prepare(mode, tools)
        live = [t for t in tools if not t.note]
        k = 0
        for v in self.versions():
            order = live[k % len(live):] + live[:k % len(live)]
            k += 1
            for t in order:
                t.samples.append(self.one(mode, t, v))
        time.sleep(0.5)   # the registry writes its access log after answering
        for key in ("am-cold", "am-warm"):
            t = next(t for t in tools if t.key == key)
            counts = []
            for v in self.versions():
                pair = self.pairs[key][v]
                reqs = self.w.requests_for(mode, t.repo, v, pair)
                blob = [e for e in reqs if "/blobs/" in e[1]]
                n = len(reqs)
                if key == "am-warm":
                    n -= min(len(blob), 2)   # the untimed p<version> index read these configs
                counts.append(n)
            self.requests[(mode, key)] = counts
            self.request_list = getattr(self, "request_list", {})
            v = self.versions()[0]
            seen = self.w.requests_for(mode, t.repo, v, self.pairs[key][v])
            if key == "am-warm":    # the untimed p<version> index's config reads
                blobs = [e for e in seen if "/blobs/" in e[1]][:2]
                seen = [e for e in seen if e not in blobs]
            self.request_list[(mode, key)] = [f"{m} {p.split('/v2/' + t.repo + '/')[1][:24]}" for m, p, _ in seen]
        for t in tools:
            if getattr(t, "probe", None):
                t.probe.close()
        return tools
