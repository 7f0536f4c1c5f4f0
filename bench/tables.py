"""`make bench BENCH_ARGS="--section tables"`: what grows with the backlog
(issue 25). (a) A start with a large journal: 100,000 pending groups written
in the journal's own format (docs/durability.md, server/queue/journal.h), the
time to replay them and archmerge's peak RSS while its workers go through
them against the plain registry (absent repositories: each run is a 404, so
nothing is published). (b) 10,000 waiting groups, each missing one
architecture, announced by webhooks: RSS, and how long `/status` and `/ui`
take and how large they are. Figures only, never asserted."""

import http.client
import json
import collections
import os
import re
import ssl
import statistics
import struct
import threading
import time
import zlib

from env import HOSTS, RegistryClient, log_time, rss_kib, wait_until
from harness.archmerge import ArchmergeFactory, DEFAULT_RULE

MAGIC = b"AMJRNL1\n"


def _record(kind, seq, host="", rule="", repo="", version=""):
    """One journal record: u32 length | u32 crc32(payload) | payload (journal.h)."""
    payload = kind + struct.pack("<Q", seq)
    for s in (host, rule, repo, version):
        b = s.encode()
        payload += struct.pack("<H", len(b)) + b
    return struct.pack("<II", len(payload), zlib.crc32(payload) & 0xffffffff) + payload


def write_journal(state_dir, n, host, rule):
    """n pending groups: repositories library/absent-0..999, versions 9.<i>."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(state_dir, "journal"), "wb") as f:
        f.write(MAGIC)
        f.write(_record(b"S", n + 1))
        for i in range(n):
            f.write(_record(b"A", i + 1, host, rule, f"library/absent-{i % 1000}", f"9.{i}"))


def _factory(w, name):
    """A factory like the world's, on a state_dir of its own."""
    f = w.factory
    fac = ArchmergeFactory(os.path.join(w.work, name), cafile=f.cafile, certificate=f.certificate,
                           private_key=f.private_key, registries=[], webhook_auth=f.webhook_auth,
                           registry_password=f.registry_password)
    # the plain registry takes no credentials; the TLS one reads this factory's password file
    fac.registries = [dict(r, password_file=fac.password_file) if "password_file" in r else dict(r)
                      for r in f.registries]
    return fac


def _metric(am, ctx, name):
    conn = http.client.HTTPSConnection("127.0.0.1", am.port, timeout=30, context=ctx)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def journal_start(w, n=100000, watch_s=30.0):
    fac = _factory(w, "tables-journal")
    write_journal(fac.state_dir, n, HOSTS["plain"], DEFAULT_RULE["name"])
    size = os.path.getsize(os.path.join(fac.state_dir, "journal"))
    ctx = ssl.create_default_context(cafile=w.pki.ca_cert)
    t0 = time.monotonic()
    am = fac(fac.config(workers=w.workers), timeout=300)
    ready_s = time.monotonic() - t0
    hwm_ready = rss_kib(am.pid, "VmHWM")
    lines = am.log_text().splitlines()
    first = next((log_time(x) for x in lines if log_time(x) is not None), None)
    jline = next((x for x in lines if " journal " in x and "pending=" in x), "")
    replay_s = (log_time(jline) - first) if first is not None and log_time(jline) else None
    t1 = time.monotonic()
    pend0 = _metric(am, ctx, "archmerge_journal_pending")
    time.sleep(watch_s)
    pend1 = _metric(am, ctx, "archmerge_journal_pending")
    watched = time.monotonic() - t1
    hwm = rss_kib(am.pid, "VmHWM")
    rss = rss_kib(am.pid)
    runs = collections.Counter(re.findall(r" assembly .* result=(\w+)", am.log_text()))
    am.stop()
    fac.stop_all()
    return {"runs": dict(runs), "n": n, "bytes": size, "ready_s": ready_s, "replay_s": replay_s, "hwm_ready": hwm_ready,
            "hwm": hwm, "rss": rss, "drained": pend0 - pend1, "watched": watched, "pending_after": pend1}


def _push_tags(client_args, repo, tags, body, media_type, threads=8):
    todo = list(tags)
    lock = threading.Lock()

    def work():
        c = RegistryClient(*client_args)
        while True:
            with lock:
                if not todo:
                    return
                t = todo.pop()
            c.put_manifest(repo, t, body, media_type)
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def _send_all(w, am, bodies, threads=8):
    """Each body once over keep-alive HTTPS; returns (seconds, answers not 202)."""
    todo = list(bodies)
    lock = threading.Lock()
    bad = [0]
    ctx = ssl.create_default_context(cafile=w.pki.ca_cert)

    def work():
        conn = http.client.HTTPSConnection("127.0.0.1", am.port, timeout=30, context=ctx)
        while True:
            with lock:
                if not todo:
                    break
                b = todo.pop()
            conn.request("POST", am.webhook_url.split(str(am.port), 1)[1], body=b,
                         headers={"Content-Type": "application/json", "Authorization": w.secret})
            r = conn.getresponse()
            r.read()
            if r.status != 202:
                with lock:
                    bad[0] += 1
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPSConnection("127.0.0.1", am.port, timeout=30, context=ctx)
        conn.close()
    t0 = time.monotonic()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.monotonic() - t0, bad[0]


def _timed_get(am, ctx, path, n=5):
    times, size = [], 0
    for _ in range(n):
        conn = http.client.HTTPSConnection("127.0.0.1", am.port, timeout=30, context=ctx)
        conn.connect()
        t0 = time.monotonic()
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        times.append((time.monotonic() - t0) * 1000)
        size = len(body)
        conn.close()
    return statistics.median(times), max(times), size, body


class RssSampler:
    """VmRSS every 0.2 s, the highest per phase: where the peak happens."""

    def __init__(self, pid):
        self.pid, self.phase, self.peak = pid, "idle", {}
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_ev.wait(0.2):
            try:
                kib = rss_kib(self.pid)
            except OSError:
                return
            self.peak[self.phase] = max(self.peak.get(self.phase, 0), kib)

    def stop(self):
        self.stop_ev.set()
        self.t.join()


def waiting_groups(w, n=10000):
    mode, repo = "plain", "library/tables-waiting"
    fac = _factory(w, "tables-waiting")
    am = fac(fac.config(workers=w.workers))
    ctx = ssl.create_default_context(cafile=w.pki.ca_cert)
    hwm_idle = rss_kib(am.pid, "VmHWM")
    t0 = time.monotonic()
    img = w.clients[mode].push_image(repo, "w.0-amd64", arch="amd64", salt="tables")
    _push_tags((w.regs[mode].url,), repo, [f"w.{i}-amd64" for i in range(1, n)], img.body, img.media_type)
    push_s = time.monotonic() - t0
    bodies = [json.dumps(w.event(mode, repo, img.digest, f"w.{i}-amd64")[0]) for i in range(n)]
    sampler = RssSampler(am.pid)
    sampler.phase = "webhooks"
    send_s, bad = _send_all(w, am, bodies)
    sampler.phase = "checks"
    # every group is looked at once and WAITING_RECHECKS (2) times more, then left waiting
    t1 = time.monotonic()
    wait_until(lambda: _metric(am, ctx, "archmerge_queue_depth") == 0 and
               _metric(am, ctx, "archmerge_assemblies_total") >= 3 * n, 1800, 1.0,
               message="tables: the waiting groups were not all checked")
    settle_s = time.monotonic() - t1
    sampler.stop()
    hwm = rss_kib(am.pid, "VmHWM")
    rss = rss_kib(am.pid)
    st_med, st_max, st_size, st_body = _timed_get(am, ctx, "/status")
    ui_med, ui_max, ui_size, _ = _timed_get(am, ctx, "/ui")
    st = json.loads(st_body)
    gauge = _metric(am, ctx, "archmerge_groups_waiting")
    am.stop()
    fac.stop_all()
    return {"n": n, "push_s": push_s, "send_s": send_s, "bad": bad, "settle_s": settle_s, "hwm_idle": hwm_idle,
            "hwm": hwm, "rss": rss, "status_ms": (st_med, st_max), "status_bytes": st_size,
            "ui_ms": (ui_med, ui_max), "ui_bytes": ui_size, "listed": len(st.get("waiting", [])),
            "gauge": gauge, "forgotten": st.get("waiting_forgotten"), "phases": sampler.peak}


def run(w, journal_n=100000, waiting_n=10000):
    """w: a started env.World. Returns the report section (markdown)."""
    j = journal_start(w, journal_n)
    g = waiting_groups(w, waiting_n)
    mib = lambda kib: kib / 1024.0
    L = ["## Tables: a large journal, many waiting groups (issue 25)", "",
         f"archmerge workers={w.workers}; plain registry (HTTP, no auth) on loopback.", "",
         "| row | figure | target |", "|---|---|---|",
         f"| journal of {j['n']:,} pending groups ({j['bytes'] / 1e6:.1f} MB), absent repositories | "
         f"start to ready {j['ready_s']:.2f} s (log: start to the `journal pending=` line "
         f"{'-' if j['replay_s'] is None else format(j['replay_s'], '.2f')} s) | < 2 s |",
         f"| same, peak RSS | at ready {mib(j['hwm_ready']):.1f} MiB; after {j['watched']:.0f} s of runs "
         f"({sum(j['runs'].values()):,} assemblies: "
         f"{', '.join(f'{v:,} {k}' for k, v in sorted(j['runs'].items())) or 'none'}; "
         f"{j['drained']:,.0f} groups done, {j['pending_after']:,.0f} pending) {mib(j['hwm']):.1f} MiB "
         f"(RSS then {mib(j['rss']):.1f} MiB) | < 64 MiB |",
         f"| {g['n']:,} waiting groups (one architecture of two pushed), peak RSS | {mib(g['hwm']):.1f} MiB "
         f"(idle {mib(g['hwm_idle']):.1f}; sampled peak while the webhooks came "
         f"{mib(g['phases'].get('webhooks', 0)):.1f}, during the checks {mib(g['phases'].get('checks', 0)):.1f}; "
         f"RSS after {mib(g['rss']):.1f}) | < 48 MiB |",
         f"| same, `GET /status` | median {g['status_ms'][0]:.1f} ms, max {g['status_ms'][1]:.1f} ms, "
         f"{g['status_bytes']:,} bytes | < 100 ms, bounded |",
         f"| same, `GET /ui` | median {g['ui_ms'][0]:.1f} ms, max {g['ui_ms'][1]:.1f} ms, "
         f"{g['ui_bytes']:,} bytes | < 100 ms, bounded |", "",
         f"Waiting groups listed by /status: {g['listed']:,} of {g['n']:,} "
         f"(`waiting_forgotten`: {g['forgotten']}); `archmerge_groups_waiting` {g['gauge']:.0f}. "
         f"Set-up: {g['n']:,} tags pushed in {g['push_s']:.1f} s, webhooks sent in {g['send_s']:.1f} s "
         f"({g['bad']} not 202), every group checked 3 times {g['settle_s']:.1f} s later.", ""]
    return "\n".join(L) + "\n"
