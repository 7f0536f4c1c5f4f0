"""Spaced arrivals: pushes as they really come, one at a time into an idle
service, `spacing` seconds apart (0: back to back). Per spacing and mode,
archmerge makes N cold indexes (one webhook each, the last architecture's)
and the floor probe N equally cold indexes of its own with the same
requests (parallel shape, with the re-check HEADs unless single writer);
the two alternate, each after `spacing` seconds in which nothing runs.

archmerge is timed in its own log, from the webhook's `status=202` line to
the group's `published` line (both at ms resolution, truncated: the errors
cancel on average); the client-side time (202 received -> published line)
is kept beside it. The floor probe is timed inside the probe."""

import json
import re
import statistics
import time

import floor
from env import LogTail, log_time, ROBOT, HOSTS


def in_flight_ms(lines, t0, t1):
    """With archmerge's debug log: the ms between t0 and t1 (log times, s) in which at least one of its
    registry requests was in flight (each line: its end, ms resolution, and total_us); None without it."""
    spans = []
    for line in lines:
        m = re.search(r" total_us=(\d+)", line)
        if m:
            end = log_time(line) + 0.0005
            spans.append((max(t0, end - int(m.group(1)) / 1e6), min(t1 + 0.0005, end)))
    if not spans:
        return None
    spans.sort()
    total, cur_s, cur_e = 0.0, spans[0][0], spans[0][1]
    for s_, e_ in spans[1:]:
        if s_ > cur_e:
            total += cur_e - cur_s
            cur_s, cur_e = s_, e_
        else:
            cur_e = max(cur_e, e_)
    total += cur_e - cur_s
    return total * 1000.0


class Spaced:
    def __init__(self, world, am, work, n, probe_bin=None, label=""):
        """label: this archmerge's name in the rows, and a prefix of its versions (runs of
        another binary in the same world must not meet groups this one published)."""
        self.w, self.am, self.n, self.label, self.prefix = world, am, n, label, label
        self.tail = LogTail(am.log_path)
        self.probe_bin = probe_bin or floor.build(work)
        self.conn = None
        self.rows = []           # dicts: mode, spacing, am, am_client, floor (ms lists)

    def webhook(self, mode, repo, v, pair):
        """One webhook on a new HTTPS connection (Harbor's job service after an idle spell).
        Returns (client time of the 202, log time of the 202 line, log time of published)."""
        import http.client
        import ssl
        payload, ct = self.w.event(mode, repo, pair[1].digest, f"{v}-arm64")
        path = self.am.webhook_url.split(str(self.am.port), 1)[1]
        ctx = ssl.create_default_context(cafile=self.w.pki.ca_cert)
        c = http.client.HTTPSConnection("127.0.0.1", self.am.port, timeout=10, context=ctx)
        c.connect()     # the webhook's own TLS handshake is not the assembly's time
        c.request("POST", path, body=json.dumps(payload).encode(),
                  headers={"Content-Type": ct, "Authorization": self.w.secret})
        r = c.getresponse()
        r.read()
        t1 = time.time()
        c.close()
        if r.status != 202:
            raise RuntimeError(f"webhook answered {r.status}")
        group = re.escape(f"group={HOSTS[mode]}/{repo}:{v}")
        got202 = pub = None
        reqs = []
        end = time.monotonic() + 20
        while pub is None and time.monotonic() < end:
            for line in self.tail.lines():
                if " webhook " in line and "status=202" in line and re.search(group + r"(\s|$)", line):
                    got202 = log_time(line)
                elif re.search(group + r" .*result=published", line):
                    pub = log_time(line)
                elif "registry request" in line and f" path=/v2/{repo}/" in line:
                    reqs.append(line)
            if pub is None:
                time.sleep(0.004)
        if pub is None or got202 is None:
            raise TimeoutError(f"no 202/published lines for {repo}:{v}")
        self.in_flight = in_flight_ms(reqs, got202, pub)
        return t1, got202, pub

    def measure(self, mode, spacings):
        w = self.w
        url = w.regs[mode].url
        ca = w.pki.ca_cert if mode == "tls" else None
        am_repo, fl_repo = f"library/spaced-am-{mode}", f"library/spaced-fl-{mode}"
        tok = floor.token_for(w.tokens.realm, ROBOT, w.users[ROBOT], fl_repo, ca) if mode == "tls" else None
        pre = self.prefix
        vs = [f"{pre}s{sp}.{i}" for sp in spacings for i in range(self.n)] + [f"{pre}sw.0"]
        am_pairs = w.push_pairs(mode, am_repo, vs, lambda v: f"{am_repo}/{v}")
        w.push_pairs(mode, fl_repo, vs, lambda v: f"{fl_repo}/{v}")
        probe = floor.CProbe(self.probe_bin, url, fl_repo, ca, tok)
        self.webhook(mode, am_repo, f"{pre}sw.0", am_pairs[f"{pre}sw.0"])   # token, realm, connections: untimed
        probe.parallel(f"{pre}sw.0", False, recheck=w.recheck)
        try:
            for sp in spacings:
                row = {"mode": mode, "spacing": sp, "am": [], "am_client": [], "floor": [], "busy": [],
                       "t0": time.time(), "bin": self.label}
                for i in range(self.n):
                    v = f"{pre}s{sp}.{i}"

                    def run_am():
                        time.sleep(sp)
                        t1, t202, tpub = self.webhook(mode, am_repo, v, am_pairs[v])
                        row["am"].append((tpub - t202) * 1000.0)
                        row["am_client"].append((tpub + 0.0005 - t1) * 1000.0)
                        if self.in_flight is not None:
                            row["busy"].append(self.in_flight)

                    def run_floor():
                        time.sleep(sp)
                        probe.parallel(v, False, recheck=w.recheck)
                        row["floor"].append(probe.last_us / 1000.0)
                    for fn in ((run_am, run_floor) if i % 2 == 0 else (run_floor, run_am)):
                        fn()
                row["t1"] = time.time()
                self.rows.append(row)
        finally:
            probe.close()
        return self.rows


def render(rows, n, recheck):
    what = "8 requests: with the two re-check HEADs" if recheck else "6 requests, single writer"
    L = [f"## Spaced arrivals: cold indexes one at a time into an idle service ({n} per spacing and mode)", "",
         "archmerge: webhook's 202 line -> published line in its own log; floor: the parallel probe on its own "
         f"equally cold groups, the same requests ({what}), under the same spacing, alternating with archmerge.", "",
         "| mode | spacing | archmerge p50 / max ms | (client: 202 received -> published) | floor p50 / max ms "
         "| x floor (p50) | archmerge: a request in flight / none, p50 ms |", "|---|---|---|---|---|---|---|"]
    for r in merged(rows):
        a, c, f = r["am"], r["am_client"], r["floor"]
        ma, mf = statistics.median(a), statistics.median(f)
        busy = "-"
        if r["busy"]:
            idle = [x - y for x, y in zip(a, r["busy"])]
            busy = f"{statistics.median(r['busy']):.1f} / {statistics.median(idle):.1f}"
        L.append(f"| {r['mode']}{' (' + r['bin'] + ')' if r['bin'] else ''} | {r['spacing']} s | {ma:.1f} / {max(a):.1f} | {statistics.median(c):.1f} / "
                 f"{max(c):.1f} | {mf:.1f} / {max(f):.1f} | {ma / mf:.2f}x | {busy} |")
    L.append("")
    if any(r["busy"] for r in rows):
        L += ["The last column (`--curl-timing`) splits archmerge's time: while at least one of its registry "
              "requests was in flight (libcurl's total_us back from each request's log line), and while none was "
              "(its own work: waking the worker, starting threads, building and hashing the index, logging; "
              "log clock at ms resolution, so about +-1 ms).", ""]
    return L


def merged(rows):
    """Rows of the same binary, mode and spacing (--compare-bin runs blocks in turn) as one."""
    out = {}
    for r in rows:
        m = out.setdefault((r["bin"], r["mode"], r["spacing"]), dict(r, am=[], am_client=[], floor=[], busy=[]))
        for k in ("am", "am_client", "floor", "busy"):
            m[k] = m[k] + r[k]
    return list(out.values())


def target_lines(rows):
    out = []
    for r in merged(rows):
        if r["bin"] not in ("", "this"):
            continue
        ma, mf = statistics.median(r["am"]), statistics.median(r["floor"])
        out.append((f"spaced {r['spacing']} s, {r['mode']}: archmerge <= 1.0x parallel floor (p50)",
                    f"{ma / mf:.2f}x", ma <= mf))
    return out
