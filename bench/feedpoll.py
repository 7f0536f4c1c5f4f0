"""The change feed's poll at scale (issue 25, "idle change-feed poll").

A Harbor of R repositories over P projects (100 over 10, 1,000 over 50), each
repository 40 versions x 2 architectures (80 tags), answered by the Harbor
REST stand-in of the integration tests (tests/integration/harness/
harbor_standin.py): the repositories exist only as listings there, except
where something is really pushed into the TLS registry, which the stand-in
then lists with them. archmerge serves with the feed on (interval 4 s, page
size 50, reconcile off) and one rule covering the P projects.

Measured, per world, in one run:
- idle: REST requests and time of a pass with nothing pushed;
- pulls: a pass after 5 % of the repositories were pulled (Harbor moves a
  repository's update_time on a pull), and the pass after it;
- 10 groups: both architectures of a new version pushed into 10 repositories
  of 10 projects (real images): the pass that finds them against the floor,
  the same REST reads made directly by a minimal client (one repository page
  per project, one artifact page per pushed repository, sequential, one kept
  connection), the registry requests archmerge makes for the 10 groups
  (access log), and the pass after the indexes were written.
Requests are counted at the stand-in, which sees every REST call, and at the
registry's access log. Figures only, never asserted.
"""

import http.client
import json
import os
import random
import secrets
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))

from env import HOSTS, ROBOT, UA, wait_until, webhook  # noqa: E402
from harness.harbor_standin import HarborStandin  # noqa: E402

WORLDS = ((100, 10), (1000, 50))
VERSIONS = [f"1.{k}.0" for k in range(40)]
ARCHS = ["amd64", "arm64"]
INTERVAL_S = 4
PAGE_SIZE = 50
PUSHED = 10
IDLE_PASSES = 5


def _projects(p):
    return [f"p{i:02d}" for i in range(p)]


def _world(standin, repos, projects, now):
    """R listing-only repositories spread evenly, updated over the last day, newest first."""
    rnd = random.Random(repos)
    per = repos // len(projects)
    names = {}
    for pi, project in enumerate(projects):
        spec = {}
        for j in range(per):
            spec[f"app{j:03d}"] = {"versions": VERSIONS, "archs": ARCHS,
                                   "push": now - 3600 - rnd.uniform(0, 86400)}
        standin.synthesize(project, spec)
        names[project] = sorted(spec)
    return names


class _Passes:
    """Pass boundaries from /status: the stand-in calls between two are one pass."""

    def __init__(self, am, standin):
        self.am, self.standin = am, standin

    def count(self):
        r = webhook.request(self.am.url + "/status", None, None, None, self.am.cafile, method="GET")
        return json.loads(r.body)["feed"]["passes"]

    def next(self, timeout=30):
        """Wait for the next whole pass; its stand-in calls."""
        return self.after(lambda: None, timeout)

    def after(self, action, timeout=30):
        """Right after a pass ended, run action(), then return the calls of the next whole pass
        and whether action() ended before that pass began."""
        n = self.count()
        wait_until(lambda: self.count() >= n + 1, timeout, 0.02, message="no feed pass")
        action()
        done = self.count() == n + 1
        mark = len(self.standin.calls)
        wait_until(lambda: self.count() >= n + 2, timeout, 0.02, message="no feed pass")
        self.in_time = done
        return [c for c in self.standin.calls[mark:] if "/repositories" in c.path]


def _figures(calls):
    arts = sum(1 for c in calls if "/artifacts" in c.path)
    span = (max(c.time for c in calls) - min(c.start for c in calls)) * 1000 if calls else 0.0
    return {"requests": len(calls), "repo_pages": len(calls) - arts, "artifact_pages": arts, "ms": span}


def _floor(standin, auth, cafile, paths, repeats=5):
    """The same GETs made directly: sequential, one kept TLS connection; best of repeats, in ms."""
    ctx = ssl.create_default_context(cafile=cafile)
    host, port = standin.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    best = None
    for _ in range(repeats):
        conn = http.client.HTTPSConnection(host, int(port), context=ctx)
        t0 = time.monotonic()
        for p in paths:
            conn.request("GET", p, headers={"Authorization": auth, "X-Is-Resource-Name": "true"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"floor GET {p}: {r.status}")
        ms = (time.monotonic() - t0) * 1000
        conn.close()
        best = ms if best is None else min(best, ms)
    # the floor's own calls are no feed calls
    return best


def _quote2(name):
    from urllib.parse import quote
    return quote(quote(name, safe=""), safe="")


def measure(w, repos, nprojects):
    import base64
    projects = _projects(nprojects)
    standin = HarborStandin(tls_cert=w.pki.server.cert, tls_key=w.pki.server.key, admin_user="admin",
                            admin_password=secrets.token_urlsafe(12), projects=projects,
                            storage_root=w.regs["tls"].storage, readers={ROBOT: w.users[ROBOT]})
    standin.start()
    names = _world(standin, repos, projects, time.time())
    reg = dict(w.factory.registries[0], harbor_url=standin.url)
    rule = {"name": "per-arch tags", "repositories": [f"{p}/*" for p in projects],
            "source": "{repo}:{version}-{arch}", "target": "{repo}:{version}",
            "architectures": ARCHS, "format": "auto"}
    cfg = w.factory.config(registries=[reg], rules=[rule], workers=w.workers,
                           server_extra={"single_writer": True},
                           extra={"feed": {"interval_s": INTERVAL_S, "grace_s": 60, "page_size": PAGE_SIZE},
                                  "reconcile": {"on_start": False, "interval_s": 0}})
    am = w.factory(cfg)
    out = {"repos": repos, "projects": nprojects}
    try:
        passes = _Passes(am, standin)
        passes.next()                          # the first look at every project
        idle = [_figures(passes.next()) for _ in range(IDLE_PASSES)]
        out["idle"] = idle
        auth = "Basic " + base64.b64encode(f"{ROBOT}:{w.users[ROBOT]}".encode()).decode()
        idle_paths = [f"/api/v2.0/projects/{p}/repositories?sort=-update_time&page=1&page_size={PAGE_SIZE}"
                      for p in projects]
        out["idle_floor_ms"] = _floor(standin, auth, w.pki.ca_cert, idle_paths)

        # pulls: 5 % of the repositories
        rnd = random.Random(7)
        every = [f"{p}/{n}" for p in projects for n in names[p]]
        pulled = rnd.sample(every, max(1, repos // 20))
        def pull():
            for r in pulled:
                standin.pulled(r)
        out["pulled"] = len(pulled)
        out["pull_pass"] = _figures(passes.after(pull))
        out["pull_next"] = _figures(passes.next())

        # 10 groups: a new version of 10 repositories in 10 projects
        targets = [f"{projects[i * nprojects // PUSHED]}/{names[projects[i * nprojects // PUSHED]][0]}"
                   for i in range(PUSHED)]
        version = f"9.0.{repos}"                  # a version of its own per world (same registry)
        reg_log = w.regs["tls"].access_log(UA, pings=False)
        timing = {}

        def push():
            import threading
            t0 = time.time()

            def one(r):
                c = type(w.clients["tls"])(w.regs["tls"].url, "ci", w.users["ci"], w.pki.ca_cert)
                for a in ARCHS:
                    c.push_image(r, f"{version}-{a}", arch=a, salt=f"{version}/{r}")
            ts = [threading.Thread(target=one, args=(r,)) for r in targets]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            timing["push_s"] = time.time() - t0
        out["push_pass"] = _figures(passes.after(push))
        out["push_in_time"] = passes.in_time
        out["push_s"] = timing["push_s"]
        mark = len(standin.calls)
        n_mark = passes.count()
        groups = [f"group={HOSTS['tls']}/{r}:{version} " for r in targets]

        def published():
            lines = [x for x in am.log_text().splitlines() if "result=published" in x]
            return all(any(g in x for x in lines) for g in groups)
        try:
            wait_until(published, 60, 0.05)
        except TimeoutError:
            tail = "\n".join(am.log_text().splitlines()[-40:])
            raise RuntimeError(f"{repos} repositories: the 10 groups were not published; archmerge's log:\n"
                               f"{tail}") from None
        reg_after = w.regs["tls"].access_log(UA, pings=False)
        out["registry_requests"] = len(reg_after) - len(reg_log)
        kinds = {}
        for method, path, _status in reg_after[len(reg_log):]:
            k = f"{method} {path.split('/')[-2] if path.count('/') > 2 else path}"
            kinds[k] = kinds.get(k, 0) + 1
        out["registry_kinds"] = kinds
        out["registry_per_group"] = {r: sum(1 for e in reg_after[len(reg_log):] if e[1].startswith(f"/v2/{r}/"))
                                     for r in targets}
        out["registry_other"] = [e for e in reg_after[len(reg_log):]
                                 if not any(e[1].startswith(f"/v2/{r}/") for r in targets)]
        out["assemblies"] = [x[x.index("assembly"):] for x in am.log_text().splitlines()
                             if "level=" in x and " assembly " in x and f":{version} " in x]

        # Harbor counts archmerge's manifest reads as pulls: update_time moves with them.
        def pull_targets():
            for r in targets:
                standin.pulled(r)
        passes.after(pull_targets)
        window = [c for c in standin.calls[mark:] if "/repositories" in c.path]
        n_win = passes.count() - n_mark
        out["writes_window"] = {"passes": n_win, **_figures(window)}
        out["push_idle"] = _figures(passes.next())
        floor_paths = idle_paths + [
            f"/api/v2.0/projects/{r.split('/', 1)[0]}/repositories/{_quote2(r.split('/', 1)[1])}/artifacts"
            f"?with_tag=true&sort=-push_time&page=1&page_size={PAGE_SIZE}" for r in targets]
        out["push_floor_requests"] = len(floor_paths)
        out["push_floor_ms"] = _floor(standin, auth, w.pki.ca_cert, floor_paths)
        out["violations"] = list(standin.violations)
    finally:
        am.stop()
        standin.stop()
    return out


def run(w, worlds=WORLDS):
    return [measure(w, r, p) for r, p in worlds]


def _med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0


def render(results):
    lines = ["## Scale: change feed", "",
             f"Harbor stand-in with listing-only repositories (40 versions x 2 architectures each), "
             f"feed.interval_s {INTERVAL_S}, page_size {PAGE_SIZE}; requests counted at the stand-in "
             f"(REST) and in the registry's access log. Floor: the same REST GETs made directly by a "
             f"minimal client (sequential, one kept TLS connection, best of 5).", "",
             "| world | idle pass: requests (per project) | idle pass ms (floor) | 5 % pulled: pass, next pass |"
             " 10 groups: pass requests (floor) | pass ms (floor) | registry requests (per group) |"
             " from the pass after to the one after the pulls, then idle |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        idle_req = _med([x["requests"] for x in r["idle"]])
        idle_ms = _med([x["ms"] for x in r["idle"]])
        pp, pn = r["pull_pass"], r["pull_next"]
        ps = r["push_pass"]
        lines.append(
            f"| {r['repos']} repos / {r['projects']} projects | {idle_req} ({idle_req / r['projects']:.2f}) | "
            f"{idle_ms:.1f} ({r['idle_floor_ms']:.1f}, {idle_ms / r['idle_floor_ms']:.2f}x) | "
            f"{r['pulled']} pulled: {pp['requests']} ({pp['artifact_pages']} artifact pages), {pn['requests']} | "
            f"{ps['requests']} ({r['push_floor_requests']}) | "
            f"{ps['ms']:.1f} ({r['push_floor_ms']:.1f}, {ps['ms'] / r['push_floor_ms']:.2f}x) | "
            f"{r['registry_requests']} ({r['registry_requests'] / PUSHED:.1f}) | "
            f"{r['writes_window']['passes']} passes, {r['writes_window']['artifact_pages']} artifact pages; "
            f"{r['push_idle']['requests']} |")
    bad = [v for r in results for v in r["violations"]]
    if bad:
        lines += ["", f"Stand-in violations: {bad[:5]}"]
    return "\n".join(lines) + "\n"


def main():
    """Alone: python3 bench/feedpoll.py [--worlds 100:10,1000:50]."""
    import argparse
    import shutil
    import tempfile
    from env import World
    ap = argparse.ArgumentParser(description="the change feed's poll at scale")
    ap.add_argument("--worlds", default="100:10,1000:50", help="repositories:projects, comma-separated")
    args = ap.parse_args()
    worlds = [tuple(int(x) for x in s.split(":")) for s in args.worlds.split(",")]
    work = tempfile.mkdtemp(prefix="archmerge-feedpoll-")
    w = World(work)
    try:
        w.start()
        res = run(w, worlds)
    finally:
        w.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(render(res))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
