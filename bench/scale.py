"""Scale: reconcile (issue 25). One full reconcile pass of `archmerge serve`
(the pass production runs: on start and every reconcile.interval_s, its
groups handed to the workers) over a world of N repositories (bench/world.py:
40 versions x 2 architectures each, 5 % of the groups incomplete, 50 complete
groups unpublished, the rest published), against the registry's own floor in
the same run, measured again right before each archmerge pass:

- the tag-list pages: every repository's `tags/list?n=PAGE` pages, following
  the Link header, one after another on one kept-alive connection (archmerge
  lists its repositories one after another too), by a python http.client
  client;
- the 50 publications: the floor probe (bench/floor_probe.c, libcurl, the
  parallel shape: both manifest->config chains and the target HEAD at once,
  the PUT, then both source HEADs, as archmerge's default post-PUT re-check),
  cold, on WORKERS threads as archmerge's workers; each index timed inside the
  probe, the phase's time is the busiest thread's sum.

archmerge is timed from its own log: the pass line's timestamp minus its
ms= (the start) to the last assembly line of the groups it queued. Requests
are counted in the registry's access log (archmerge's User-Agent, pings left
out). The pass measured is a regular one (reconcile.verify_on_start = false,
verify_per_pass as given); for worlds up to --scale-full-upto repositories
the pass that reads every group (serve's first pass by default, and every
pass before reconcile skipped published groups) is measured too.
Figures only, never asserted."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import floor  # noqa: E402
import world as world_mod  # noqa: E402
from env import log_time  # noqa: E402
from harness.archmerge import render_libconfig, DEFAULT_RULE  # noqa: E402
from harness.registry import Registry  # noqa: E402
from harness.util import free_port, wait_until  # noqa: E402

AM_UA = "archmerge/"
_ACCESS = re.compile(r'"(\S+) (\S+) [^"]*" (\d{3}) \S+ "[^"]*" "([^"]*)"')


def access_lines(reg, offset):
    """(method, path) of archmerge's requests in the registry log after byte offset, pings left out."""
    with open(reg.log_path, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    out = []
    for line in text.splitlines():
        m = _ACCESS.search(line)
        if m and AM_UA in m.group(4) and not (m.group(1) == "GET" and m.group(2) == "/v2/"):
            out.append((m.group(1), m.group(2)))
    return out


def kinds(reqs):
    k = {"tags/list": 0, "GET manifest": 0, "HEAD manifest": 0, "PUT manifest": 0, "GET blob": 0, "other": 0}
    for method, path in reqs:
        if "/tags/list" in path:
            k["tags/list"] += 1
        elif "/manifests/" in path and method in ("GET", "HEAD", "PUT"):
            k[f"{method} manifest"] += 1
        elif "/blobs/" in path and method == "GET":
            k["GET blob"] += 1
        else:
            k["other"] += 1
    return k


def floor_listing(url, repos, page_size):
    """Seconds to read every repository's tag-list pages, one after another on one connection."""
    c = world_mod.Conn(url)
    pages = 0
    t0 = time.perf_counter()
    for repo in repos:
        path = f"/v2/{repo}/tags/list?n={page_size}"
        while path:
            r, _ = c.do("GET", path)
            pages += 1
            link = r.getheader("Link")
            m = re.match(r"\s*<([^>]+)>", link or "")
            path = urllib.parse.urlsplit(m.group(1))._replace(scheme="", netloc="").geturl() if m else None
    dt = time.perf_counter() - t0
    c.close()
    return dt, pages


def floor_publications(probe_bin, url, groups, workers):
    """The publications on `workers` threads; seconds of the busiest thread (probe-timed)."""
    sums = [0] * workers
    errors = []

    def work(i):
        try:
            for repo, version in groups[i::workers]:
                p = floor.CProbe(probe_bin, url, repo)
                try:
                    p.parallel(version, False, version, recheck=True)
                    sums[i] += p.last_us
                finally:
                    p.close()
        except Exception as exc:
            errors.append(exc)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return max(sums) / 1e6


class Serve:
    """archmerge serve with one reconcile pass on start and no periodic one."""

    def __init__(self, binary, work, url, repos, workers, max_concurrent, page_size, log_level="info",
                 **reconcile):
        self.work = work
        self.log_path = os.path.join(work, "archmerge.log")
        state = os.path.join(work, "state")
        os.makedirs(state, mode=0o700, exist_ok=True)
        rec = {"on_start": True, "interval_s": 0, "page_size": page_size, "repositories": list(repos)}
        rec.update(reconcile)
        text = render_libconfig({
            "server": {"listen": f"127.0.0.1:{free_port()}", "plain_http": True,
                       "allow_unauthenticated": True, "workers": workers},
            "registries": [{"host": world_mod.HOST, "url": url, "max_concurrent": max_concurrent}],
            "rules": [dict(DEFAULT_RULE)], "state_dir": state, "reconcile": rec, "log_level": log_level})
        cfg = os.path.join(work, "archmerge.conf")
        fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.log = open(self.log_path, "wb")
        self.p = subprocess.Popen([binary, "serve", "-c", cfg], stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=subprocess.STDOUT)

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def measure(self, timeout=1800):
        """(seconds, pass fields) of the on-start pass, once every group it queued has its line."""
        rx = re.compile(r"reconcile pass .*")
        line = None

        def passed():
            nonlocal line
            if self.p.poll() is not None:
                raise RuntimeError(f"archmerge exited {self.p.returncode}: {self.text()[-2000:]}")
            line = next((ln for ln in self.text().splitlines() if rx.search(ln)), None)
            return line is not None
        wait_until(passed, timeout, 0.2, message="scale: no reconcile pass line")
        f = dict(re.findall(r"(\w+)=(\S+)", line))
        start = log_time(line) - int(f["ms"]) / 1000.0
        queued = int(f["queued"])
        done_rx = re.compile(r"assembly job=\d+ group=(\S+) .*result=(published|unchanged|waiting|refused|failed)")
        ends = {}

        def drained():
            for ln in self.text().splitlines():
                m = done_rx.search(ln)
                if m:
                    ends[m.group(1)] = log_time(ln)
            return len(ends) >= queued
        wait_until(drained, timeout, 0.2, message="scale: the queued groups did not finish")
        end = max([log_time(line)] + list(ends.values()))
        results = {}
        for ln in self.text().splitlines():
            m = done_rx.search(ln)
            if m:
                results[m.group(2)] = results.get(m.group(2), 0) + 1
        f["results"] = results
        return end - start, f

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.log.close()


def one_size(n, binary, probe_bin, args, out):
    work = tempfile.mkdtemp(prefix=f"archmerge-scale-{n}-", dir=world_mod.tmpfs_dir())
    reg = None
    try:
        reg = Registry(os.path.join(work, "registry")).start()
        w = world_mod.ScaleWorld(reg.url, n)
        seed = w.seed(binary, work, None if args.scale_seed == "http" else reg.storage)
        row = {"repos": n, "tags": w.tags(), "groups": w.groups(), "published": w.published_groups(),
               "unpublished": len(w.unpublished), "seed": seed}
        passes = [(f"regular {v}", {"verify_on_start": False, "verify_per_pass": v}) for v in verify_list(args)]
        if n <= args.scale_full_upto:
            passes.append(("every group", {"verify_on_start": True}))
        for name, rec in passes:
            # The floor right before each pass (the machine's load moves between minutes): the
            # listing, then the 50 publications, taken away again for archmerge to make.
            time.sleep(1)
            fl = {}
            fl["list_s"], row["floor_pages"] = floor_listing(reg.url, sorted(w.repos), args.page_size)
            fl["pub_s"] = floor_publications(probe_bin, reg.url, sorted(w.unpublished), args.workers)
            fl["s"] = fl["list_s"] + fl["pub_s"]
            w.unpublish()
            d = os.path.join(work, "am-" + name.replace(" ", "-"))
            os.makedirs(d)
            time.sleep(1)
            offset = os.path.getsize(reg.log_path)
            am = Serve(binary, d, reg.url, w.repos, args.workers, args.max_concurrent, args.page_size, **rec)
            try:
                secs, f = am.measure()
            finally:
                am.stop()
            reqs = access_lines(reg, offset)
            row[name] = {"s": secs, "requests": len(reqs), "kinds": kinds(reqs), "pass": f, "floor": fl}
            w.unpublish()
        out.append(row)
    finally:
        if reg is not None:
            reg.stop()
        shutil.rmtree(work, ignore_errors=True)


def verify_list(args):
    return [int(v) for v in str(args.verify_per_pass).split(",") if v != ""]


def run(binary, work, args):
    """Every size in args.scale_repos; markdown lines (and the raw figures as JSON at the end)."""
    probe_bin = floor.build(work)
    rows = []
    for n in [int(x) for x in args.scale_repos.split(",") if x]:
        one_size(n, binary, probe_bin, args, rows)
    return render(rows, args), rows


def render(rows, args):
    import datetime
    try:
        load = " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        load = "?"
    now = datetime.datetime.now(datetime.timezone.utc)
    L = ["## Scale: reconcile", "",
         f"{now:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average at the end {load}.", "",
         f"One reconcile pass of `archmerge serve` (workers={args.workers}, max_concurrent={args.max_concurrent}, "
         f"page_size={args.page_size}, the post-PUT re-check on) over "
         "N repositories x 40 versions x 2 architectures on a docker-registry on loopback (plain HTTP); "
         "5 % of the groups miss arm64, 50 complete groups are unpublished. Floor: the tag-list pages one "
         "after another on one kept-alive connection (python http.client) plus the 50 publications by the "
         f"floor probe (libcurl, parallel shape, re-check HEADs) on {args.workers} threads.", "",
         "| repositories | tags | groups | seeding s | floor: pages / s | floor: 50 publications s | floor s | "
         "verify_per_pass | archmerge s | x floor | requests | of which tags/list | present / verified |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for v in verify_list(args):
            a = r[f"regular {v}"]
            p = a["pass"]
            fl = a["floor"]
            L.append(f"| {r['repos']} | {r['tags']} | {r['groups']} | {r['seed']['total_s']:.1f} "
                     f"({r['seed']['mode']}) | {r['floor_pages']} / {fl['list_s']:.2f} | "
                     f"{fl['pub_s']:.3f} | {fl['s']:.2f} | {v} | {a['s']:.2f} | "
                     f"{a['s'] / fl['s']:.2f}x | {a['requests']} | {a['kinds']['tags/list']} | "
                     f"{p.get('present')} / {p.get('verified')} |")
    full = [r for r in rows if "every group" in r]
    if full:
        L += ["", "The pass that reads every complete group (serve's first pass with verify_on_start = true, "
              "`archmerge reconcile`, and every pass before this change):", "",
              "| repositories | archmerge s | x floor | requests | GET manifest | HEAD manifest | GET blob |",
              "|---|---|---|---|---|---|---|"]
        for r in full:
            a = r["every group"]
            L.append(f"| {r['repos']} | {a['s']:.2f} | {a['s'] / a['floor']['s']:.2f}x | {a['requests']} | "
                     f"{a['kinds']['GET manifest']} | {a['kinds']['HEAD manifest']} | {a['kinds']['GET blob']} |")
    v0 = verify_list(args)[0]
    L += ["", f"Requests of the regular pass (verify_per_pass {v0}) by kind: " + "; ".join(
        f"{r['repos']} repositories: " + ", ".join(f"{k} {n}" for k, n in r[f"regular {v0}"]["kinds"].items() if n)
        for r in rows), ""]
    return L


def add_args(ap):
    ap.add_argument("--scale-repos", default="100,1000", help="scale section: world sizes (repositories)")
    ap.add_argument("--scale-seed", default="copy", choices=["copy", "http"],
                    help="scale section: how the world beyond two repositories is seeded (bench/world.py)")
    ap.add_argument("--scale-full-upto", type=int, default=100,
                    help="scale section: also time the pass that reads every group up to this many repositories")
    ap.add_argument("--verify-per-pass", default="100,0,200",
                    help="scale section: reconcile.verify_per_pass of the regular passes measured (comma list; "
                         "the first is the default's)")
    ap.add_argument("--page-size", type=int, default=100, help="scale section: reconcile.page_size")


if __name__ == "__main__":
    # python3 bench/scale.py [--scale-repos 100]: this section alone, report on stdout.
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(ap)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--max-concurrent", type=int, default=4)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="archmerge-scale-")
    try:
        lines, raw = run(os.path.join(os.path.dirname(HERE), "archmerge"), tmp, a)
        print("\n".join(lines))
        print(json.dumps(raw, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
