#!/usr/bin/python3
"""`make bench`: archmerge against a real registry on loopback (TLS + token
auth, as in the integration tests), with the manual docker-manifest workflow
measured in the same run as the baseline. Prints a markdown table and writes
it to bench/results/<timestamp>.md.

Figures are same-run ratios and absolute values on this machine; they are
for comparison, never asserted by tests.
"""

import argparse
import datetime
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from harness import pki as pki_mod, webhook  # noqa: E402
from harness.archmerge import ArchmergeFactory  # noqa: E402
from harness.images import RegistryClient, RegistryError  # noqa: E402
from harness.registry import Registry  # noqa: E402
from harness.tokensrv import TokenService  # noqa: E402
from harness.util import wait_until  # noqa: E402

ROBOT = "robot$library+archmerge"
UA = "archmerge/"


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User + system CPU time of a process (its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


class Bench:
    def __init__(self, work, groups, baseline_groups, burst_groups, workers):
        self.work = work
        self.n_groups, self.n_baseline, self.n_burst = groups, baseline_groups, burst_groups
        self.workers = workers
        self.rows = []
        self.notes = []

    # ---------------------------------------------------------------- setup
    def start(self):
        self.pki = pki_mod.create_pki(os.path.join(self.work, "pki"))
        signer = self.pki.issue("token-signer", server=False, key_kind="rsa")
        self.users = {ROBOT: secrets.token_urlsafe(18), "ci": secrets.token_urlsafe(18)}
        self.tokens = TokenService(tls_cert=self.pki.server.cert, tls_key=self.pki.server.key,
                                   signing_key=signer.key, signing_chain=[signer.cert], users=self.users,
                                   issuer="bench", service="harbor-registry")
        self.tokens.start()
        self.registry = Registry(os.path.join(self.work, "registry"), tls_cert=self.pki.server.cert,
                                 tls_key=self.pki.server.key, cafile=self.pki.ca_cert,
                                 token_realm=self.tokens.realm, token_service="harbor-registry",
                                 token_issuer="bench", token_rootcertbundle=signer.cert)
        self.registry.start()
        self.ci = RegistryClient(self.registry.url, "ci", self.users["ci"], self.pki.ca_cert)
        self.secret = "Bearer " + secrets.token_urlsafe(24)
        self.factory = ArchmergeFactory(os.path.join(self.work, "archmerge"), cafile=self.pki.ca_cert,
                                        certificate=self.pki.server.cert, private_key=self.pki.server.key,
                                        registries=[{"host": "harbor.example.com", "url": self.registry.url,
                                                     "ca_file": self.pki.ca_cert, "username": ROBOT}],
                                        webhook_auth=self.secret, registry_password=self.users[ROBOT])

    def start_archmerge(self):
        am = self.factory(self.factory.config(workers=self.workers))
        time.sleep(0.3)
        return am

    def stop(self):
        for obj in (getattr(self, "factory", None),):
            if obj is not None:
                obj.stop_all()
        if getattr(self, "registry", None):
            self.registry.stop()
        if getattr(self, "tokens", None):
            self.tokens.stop()

    def archmerge_requests(self, repo):
        """Registry requests archmerge made for one repository (token fetches are not registry requests)."""
        return [e for e in self.registry.access_log(UA) if e[1].startswith(f"/v2/{repo}/")]

    def exists(self, repo, tag):
        # distribution's filesystem driver may answer 500 while the tag link is being written
        try:
            return self.ci.head_manifest(repo, tag) is not None
        except RegistryError as exc:
            if exc.status >= 500:
                return False
            raise

    def push_pair(self, repo, version, salt=""):
        a = self.ci.push_image(repo, f"{version}-amd64", arch="amd64", salt=salt)
        b = self.ci.push_image(repo, f"{version}-arm64", arch="arm64", salt=salt)
        return a, b

    # ---------------------------------------------------------------- metrics
    def scrape(self, am):
        """/metrics as {(name, labels): value}."""
        import urllib.request
        ctx = __import__("harness.util", fromlist=["client_tls_context"]).client_tls_context(self.pki.ca_cert)
        with urllib.request.urlopen(am.url + "/metrics", context=ctx, timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            key, _, val = line.rpartition(" ")
            out[key] = float(val)
        return out

    def registry_time(self, before, after):
        """Seconds and requests spent waiting on the registry between two scrapes, by method."""
        res = {}
        for key, val in after.items():
            m = re.match(r'archmerge_registry_request_duration_seconds_(sum|count)\{method="(\w+)"\}', key)
            if m:
                d = res.setdefault(m.group(2), [0.0, 0.0])
                d[0 if m.group(1) == "sum" else 1] += val - before.get(key, 0.0)
        return res

    # ---------------------------------------------------------------- 1: latency
    def latency(self, am):
        repo = "library/lat"
        lat = []
        self.m_before = self.scrape(am)
        cpu0 = cpu_seconds(am.pid)
        # warm-up: first group pays the token fetch and TLS handshakes
        for i in range(self.n_groups + 1):
            v = f"1.{i}"
            a, b = self.push_pair(repo, v, salt=f"lat{i}")
            am.send(*webhook.push_event(repo, a.digest, f"{v}-amd64"))
            status, _ = am.send(*webhook.push_event(repo, b.digest, f"{v}-arm64"))
            t1 = time.perf_counter()    # the last architecture's webhook is answered
            assert status == 202
            while not self.exists(repo, v):
                if time.perf_counter() - t1 > 10:
                    raise RuntimeError(f"{repo}:{v} not published in 10 s")
            if i > 0:
                lat.append((time.perf_counter() - t1) * 1000.0)
        self.m_after = self.scrape(am)
        self.cpu_ms = (cpu_seconds(am.pid) - cpu0) * 1000.0
        log = am.log_text()
        ms = [int(x) for x in re.findall(r"group=\S+/library/lat:1\.\d+ .*result=published .*ms=(\d+)", log)]
        self.assembly_ms = statistics.mean(ms) if ms else 0.0
        self.n_assemblies = len(ms)
        self.n_runs = len(re.findall(r"assembly .*group=\S+/library/lat:1\.\d+ ", log))
        return lat

    # ---------------------------------------------------------------- 2: baseline
    def baseline(self):
        """The manual workflow. docker's CLI pushes to a loopback registry over plain HTTP (it
        treats 127.0.0.0/8 as insecure), so it gets its own docker-registry process, same
        binary, plain HTTP and no auth: cheaper per request than archmerge's TLS + token path."""
        plain = Registry(os.path.join(self.work, "registry-plain"))
        plain.start()
        self.plain = plain
        cfg = os.path.join(self.work, "docker-config")
        os.makedirs(cfg, exist_ok=True)
        with open(os.path.join(cfg, "config.json"), "w") as f:
            json.dump({"auths": {}}, f)
        env = dict(os.environ, DOCKER_CONFIG=cfg)
        client = RegistryClient(plain.url, None, None, None)
        repo = "library/base"
        times = []
        for i in range(self.n_baseline):
            v = f"2.{i}"
            client.push_image(repo, f"{v}-amd64", arch="amd64", salt=f"base{i}")
            client.push_image(repo, f"{v}-arm64", arch="arm64", salt=f"base{i}")
            ref = f"{plain.host}/{repo}"
            steps = [
                ["docker", "manifest", "create", "--insecure", "--amend", f"{ref}:{v}", f"{ref}:{v}-amd64", f"{ref}:{v}-arm64"],
                ["docker", "manifest", "annotate", "--os", "linux", "--arch", "amd64", f"{ref}:{v}", f"{ref}:{v}-amd64"],
                ["docker", "manifest", "annotate", "--os", "linux", "--arch", "arm64", f"{ref}:{v}", f"{ref}:{v}-arm64"],
                ["docker", "manifest", "push", "--insecure", "--purge", f"{ref}:{v}"],
            ]
            t0 = time.perf_counter()
            for argv in steps:
                p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
                if p.returncode != 0:
                    raise RuntimeError(f"{' '.join(argv)}: {p.stderr.strip()}")
            times.append((time.perf_counter() - t0) * 1000.0)
            if client.head_manifest(repo, v) is None:
                raise RuntimeError("docker manifest push did not publish")
        plain.stop()
        return times

    # ---------------------------------------------------------------- 3/5: burst
    def burst(self, am):
        repo = "library/burst"
        n = self.n_burst
        t_push = time.perf_counter()
        payloads = []
        # per-arch images: distinct content per group so that every index differs
        pushers = []
        results = [None] * n

        def push_range(lo, hi):
            c = RegistryClient(self.registry.url, "ci", self.users["ci"], self.pki.ca_cert)
            for i in range(lo, hi):
                a = c.push_image(repo, f"3.{i}-amd64", arch="amd64", salt=f"b{i}")
                b = c.push_image(repo, f"3.{i}-arm64", arch="arm64", salt=f"b{i}")
                results[i] = (a, b)
        step = (n + 3) // 4
        for lo in range(0, n, step):
            t = threading.Thread(target=push_range, args=(lo, min(n, lo + step)))
            t.start()
            pushers.append(t)
        for t in pushers:
            t.join()
        push_s = time.perf_counter() - t_push
        for i, (a, b) in enumerate(results):
            payloads.append(webhook.push_event(repo, a.digest, f"3.{i}-amd64")[0])
            payloads.append(webhook.push_event(repo, b.digest, f"3.{i}-arm64")[0])
        lua = os.path.join(self.work, "burst.lua")
        bodies = os.path.join(self.work, "bodies.txt")
        with open(bodies, "w") as f:
            for p in payloads:
                f.write(json.dumps(p, separators=(",", ":")) + "\n")
        with open(lua, "w") as f:
            f.write(LUA_TEMPLATE.replace("@BODIES@", bodies).replace("@AUTH@", self.secret))
        rss_idle = rss_kib(am.pid)
        t0 = time.perf_counter()
        p = subprocess.run(["wrk", "-t", "2", "-c", "16", "-d", "3s", "--latency", "-s", lua, am.webhook_url],
                           capture_output=True, text=True, timeout=120)
        wrk_out = p.stdout + p.stderr
        published = re.compile(r"group=\S+/library/burst:3\.(\d+) .*result=(published|unchanged)")

        def all_done():
            return len(set(published.findall(am.log_text()))) >= n
        wait_until(all_done, 600, 0.2, message="burst: not every index was published")
        t_all = time.perf_counter() - t0
        rss_peak = rss_kib(am.pid, "VmHWM")
        m = re.search(r"Requests/sec:\s+([\d.]+)", wrk_out)
        rate = float(m.group(1)) if m else 0.0
        total = re.search(r"(\d+) requests in", wrk_out)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk_out)
        bad = re.search(r"BAD (\d+)", wrk_out)
        errors = int(non2xx.group(1)) if non2xx else 0
        sock_err = re.search(r"Socket errors: (.*)", wrk_out)
        failed = len(re.findall(r"library/burst:3\.\d+ .*result=(failed|refused)", am.log_text()))
        # check a sample of indexes really hold the right children
        for i in range(0, n, max(1, n // 20)):
            m_ = self.ci.get_manifest(repo, f"3.{i}")
            digests = [d["digest"] for d in m_.json["manifests"]]
            assert digests == [results[i][0].digest, results[i][1].digest], f"wrong children in 3.{i}"
        return {
            "push_s": push_s, "rate": rate, "requests": int(total.group(1)) if total else 0,
            "errors": errors + failed + (int(bad.group(1)) if bad else 0),
            "socket_errors": sock_err.group(1) if sock_err else "none",
            "t_all": t_all, "rss_idle": rss_idle, "rss_peak": rss_peak, "wrk": wrk_out,
        }

    # ---------------------------------------------------------------- 4: requests per index
    def requests_per_index(self):
        # cold: a fresh archmerge, both architectures present, one webhook. One warm-up
        # group in another repository first: the process learns the token realm from
        # its very first request (a 401), once per lifetime, not per index.
        am = self.start_archmerge()
        w1, w2 = self.push_pair("library/warmup", "0.1", salt="warmup")
        am.send(*webhook.push_event("library/warmup", w2.digest, "0.1-arm64"))
        wait_until(lambda: self.exists("library/warmup", "0.1"), 15)
        repo = "library/reqs"
        a, b = self.push_pair(repo, "4.0", salt="reqs")
        before = len(self.archmerge_requests(repo))
        am.send(*webhook.push_event(repo, b.digest, "4.0-arm64"))
        wait_until(lambda: self.exists(repo, "4.0"), 15)
        wait_until(lambda: re.search(r"reqs:4\.0 .*result=published", am.log_text()), 15)
        cold = self.archmerge_requests(repo)[before:]
        # warm: the same children again, target gone (deleted), one webhook
        self.ci.delete_manifest(repo, "4.0")
        before = len(self.archmerge_requests(repo))
        am.send(*webhook.push_event(repo, b.digest, "4.0-arm64"))
        wait_until(lambda: self.exists(repo, "4.0"), 15)
        time.sleep(0.2)
        warm = self.archmerge_requests(repo)[before:]
        # unchanged re-delivery
        before = len(self.archmerge_requests(repo))
        am.send(*webhook.push_event(repo, b.digest, "4.0-arm64"))
        wait_until(lambda: len(re.findall(r"reqs:4\.0 .*result=unchanged", am.log_text())) >= 1, 15)
        same = self.archmerge_requests(repo)[before:]
        am.stop()
        return cold, warm, same

    # ---------------------------------------------------------------- report
    def run(self):
        self.start()
        t_start = time.time()
        cold, warm, same = self.requests_per_index()
        am = self.start_archmerge()
        lat = self.latency(am)
        base = self.baseline() if self.n_baseline else []
        burst = self.burst(am)
        am.stop()
        return self.report(lat, base, burst, cold, warm, same, time.time() - t_start)

    def report(self, lat, base, burst, cold, warm, same, elapsed):
        med = statistics.median(lat)
        lines = []
        lines.append(f"# archmerge benchmark, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
        lines.append("")
        lines.append(f"Machine: {os.cpu_count()} cores; registry: docker-registry "
                     f"(TLS + token auth) on 127.0.0.1; archmerge workers={self.workers}. Run took {elapsed:.0f} s.")
        lines.append("")
        lines.append("| measure | value | target | met |")
        lines.append("|---|---|---|---|")

        def row(name, value, target="", met=""):
            lines.append(f"| {name} | {value} | {target} | {met} |")
        row(f"latency p50 (last webhook answered -> index readable), {len(lat)} groups", f"{med:.1f} ms")
        row("latency p95", f"{pct(lat, 95):.1f} ms")
        p99 = pct(lat, 99)
        row("latency p99", f"{p99:.1f} ms", "< 50 ms", "yes" if p99 < 50 else "no")
        if base:
            bmed = statistics.median(base)
            ratio = bmed / med
            row(f"docker manifest create/annotate/push median, {len(base)} indexes", f"{bmed:.0f} ms")
            row("speed-up (baseline median / archmerge median)", f"{ratio:.0f}x", ">= 30x",
                "yes" if ratio >= 30 else "no")
        row(f"burst: {self.n_burst} groups x 2 events over HTTPS keep-alive (wrk, 16 connections, 3 s)",
            f"{burst['requests']} requests")
        row("burst: webhooks accepted per second", f"{burst['rate']:.0f}/s", ">= 5000/s",
            "yes" if burst["rate"] >= 5000 else "no")
        row("burst: time from first webhook to every index published", f"{burst['t_all']:.2f} s")
        row("burst: errors (non-2xx, failed/refused assemblies, wrong children)", str(burst["errors"]), "0",
            "yes" if burst["errors"] == 0 else "no")
        row("registry requests per 2-arch index, cold", str(len(cold)), "<= 6", "yes" if len(cold) <= 6 else "no")
        row("registry requests per 2-arch index, warm (children known, target missing)", str(len(warm)),
            "<= 4", "yes" if len(warm) <= 4 else "no")
        row("registry requests, unchanged re-delivery", str(len(same)))
        reg = self.registry_time(self.m_before, self.m_after)
        n = max(1, self.n_assemblies)
        reg_ms = sum(v[0] for v in reg.values()) * 1000.0 / n
        row(f"latency phase: mean time of a publishing run ({self.n_assemblies} indexes)",
            f"{self.assembly_ms:.1f} ms")
        row(f"latency phase: registry answer time per published index (all {self.n_runs} runs, "
            "waiting ones included; metrics histogram)", f"{reg_ms:.1f} ms")
        row("latency phase: archmerge CPU time per published index (user+system, all threads)",
            f"{self.cpu_ms / n:.2f} ms")
        for method, (secs, cnt) in sorted(reg.items()):
            if cnt:
                row(f"latency phase: registry {method} mean", f"{secs * 1000.0 / cnt:.2f} ms over {cnt:.0f} requests")
        row("RSS idle", f"{burst['rss_idle'] / 1024:.1f} MiB")
        row("RSS peak (VmHWM) after the burst", f"{burst['rss_peak'] / 1024:.1f} MiB", "< 24 MiB",
            "yes" if burst["rss_peak"] < 24 * 1024 else "no")
        lines.append("")
        lines.append("Requests, cold: " + ", ".join(f"{m} {p.split('/v2/')[1]}" for m, p, _ in cold))
        lines.append("")
        lines.append("Requests, warm: " + ", ".join(f"{m} {p.split('/v2/')[1]}" for m, p, _ in warm))
        lines.append("")
        lines.append("wrk output:\n\n```\n" + burst["wrk"].strip() + "\n```")
        return "\n".join(lines) + "\n"


LUA_TEMPLATE = r"""
-- Cycles through one Harbor payload per line; counts non-202 answers.
local bodies = {}
for line in io.lines("@BODIES@") do bodies[#bodies + 1] = line end
local i = 0
local bad = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "@AUTH@"
request = function()
  i = i + 1
  if i > #bodies then i = 1 end
  return wrk.format(nil, nil, nil, bodies[i])
end
response = function(status, headers, body)
  if status ~= 202 and status ~= 200 then bad = bad + 1 end
end
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=200, help="groups for the latency measurement")
    ap.add_argument("--baseline", type=int, default=20, help="indexes made with docker manifest")
    ap.add_argument("--burst", type=int, default=1000, help="groups in the burst")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--section", choices=["all", "hostile"], default="all",
                    help="hostile: only the held-connections figures (bench/hostile.py)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="archmerge-bench-")
    b = Bench(work, args.groups, args.baseline, args.burst, args.workers)
    try:
        if args.section == "hostile":
            import hostile
            b.start()
            text = hostile.run(b)
        else:
            text = b.run()
    finally:
        b.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", f"{datetime.datetime.now():%Y%m%d-%H%M%S}.md")
    with open(out, "w") as f:
        f.write(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
