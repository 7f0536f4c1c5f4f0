#!/usr/bin/python3
"""`make bench`: archmerge, the floor probe and the peers on the same
registries (docker-registry on loopback, plain HTTP without auth and TLS +
bearer token) in one run; then the burst. Prints one markdown report and
writes it to bench/results/<timestamp>.md. Figures only, never asserted.

Modules: env.py (registries, token service, archmerge), floor.py (the
minimal client), peers.py (docker/buildah/podman/manifest-tool),
latency.py (per-index round-robin), burst.py (wrk burst), spaced.py (spaced
arrivals), feedpoll.py (the change feed's poll at scale), tables.py (a large
journal, many waiting groups), scale.py (the reconcile pass over large worlds
that world.py seeds), report.py."""

import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import burst as burst_mod  # noqa: E402
import latency  # noqa: E402
import report  # noqa: E402
import scale  # noqa: E402
from env import MODES, World  # noqa: E402


ARCHMERGE = os.environ.get("ARCHMERGE_BIN") or os.path.join(os.path.dirname(HERE), "archmerge")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--indexes", type=int, default=10, help="indexes per tool and mode in each repeat")
    ap.add_argument("--repeats", type=int, default=3, help="repeats (round-robin, order rotated)")
    ap.add_argument("--modes", default="plain,tls", help="plain, tls or both")
    ap.add_argument("--peers", default=None, help="comma list of peers (manifesttool,docker,buildah,podman)")
    ap.add_argument("--burst", type=int, default=1000, help="groups in the burst (0: no burst)")
    ap.add_argument("--burst-mode", default="tls", choices=MODES)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--max-concurrent", type=int, default=4, help="registries[].max_concurrent")
    ap.add_argument("--section", choices=["all", "hostile", "spaced", "feedpoll", "tables", "scale"], default="all",
                    help="hostile: only the held-connections figures (bench/hostile.py); "
                         "spaced: only the spaced-arrivals rows (bench/spaced.py); "
                         "feedpoll: only the change feed's poll at scale (bench/feedpoll.py); "
                         "tables: only the large journal and the waiting groups (bench/tables.py); "
                         "scale: only the reconcile pass over large worlds (bench/scale.py)")
    ap.add_argument("--spacing", default="0,1,5",
                    help="seconds between spaced arrivals, comma list (empty: no spaced rows)")
    ap.add_argument("--spaced-indexes", type=int, default=8, help="cold indexes per spacing, tool and mode")
    ap.add_argument("--compare-bin", default=None,
                    help="spaced rows also for this other archmerge executable (e.g. the commit before a "
                         "change): blocks of this binary and that one in turn, 2 each, in the same run")
    ap.add_argument("--single-writer", action="store_true",
                    help="archmerge with server.single_writer = true (6 / 4 requests, no re-check HEADs) "
                         "against the floor without them; default: the product's default configuration")
    ap.add_argument("--curl-timing", action="store_true",
                    help="archmerge at log_level debug: per-request libcurl timing breakdown in the report "
                         "(the debug log itself costs a little time)")
    ap.add_argument("--replicas", type=int, default=1,
                    help="above 1: server.replicas = N (the re-check after each PUT as by default, 8 / 6 "
                         "requests)")
    ap.add_argument("--label", default="", help="suffix of the result file name")
    scale.add_args(ap)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="archmerge-bench-")
    w = World(work, args.workers, args.max_concurrent, args.replicas, args.single_writer)
    t_start = time.time()
    try:
        w.start()
        if args.section == "hostile":
            import hostile
            text = hostile.run(w)
        elif args.section == "spaced":
            text = run_spaced(w, work, args, t_start)
        elif args.section == "feedpoll":
            import feedpoll
            text = feedpoll.render(feedpoll.run(w))
        elif args.section == "tables":
            import tables
            text = tables.run(w)
        elif args.section == "scale":
            text = report.scale_text(scale.run(w.factory.binary or ARCHMERGE, work, args)[0])
        else:
            text = run_all(w, work, args, t_start)
    finally:
        w.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    name = f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%d-%H%M%S}{'-' + args.label if args.label else ''}.md"
    out = os.path.join(HERE, "results", name)
    with open(out, "w") as f:
        f.write(text)
    print(f"written to {out}")


def run_all(w, work, args, t_start):
    peers = args.peers.split(",") if args.peers else None
    results = {}
    am = w.start_archmerge(args.curl_timing)
    lat = latency.Latency(w, am, work, args.indexes, args.repeats, peers)
    for mode in args.modes.split(","):
        results[mode] = lat.measure(mode)
    am.stop()
    am_log = am.log_path
    b = None
    if args.burst:
        am = w.start_archmerge()
        b = burst_mod.run(w, am, work, args.burst, args.burst_mode)
        am.stop()
        am = w.start_archmerge()
        b["held"] = burst_mod.run(w, am, work, args.burst, args.burst_mode, hold_registry=True)
        am.stop()
    timing = report.curl_timing(open(am_log).read()) if args.curl_timing else None
    sp = spaced_rows(w, work, args, lat.probe_bin)
    import feedpoll
    fp = feedpoll.run(w)
    import tables
    tab = tables.run(w)
    return (report.render(w, args, results, lat, b, time.time() - t_start, timing, sp) + "\n"
            + feedpoll.render(fp) + "\n" + tab + "\n"
            + report.scale_text(scale.run(w.factory.binary or ARCHMERGE, work, args)[0]))


def spaced_rows(w, work, args, probe_bin=None):
    """The spaced-arrivals rows on a fresh archmerge: (rows, markdown lines), or None."""
    spacings = [float(x) if "." in x else int(x) for x in args.spacing.split(",") if x != ""]
    if not spacings:
        return None
    import spaced
    rows, logs = [], []
    if args.compare_bin:    # this binary and the other in turn, each block on a fresh process
        n = max(1, args.spaced_indexes // 2)
        blocks = [("this", None), ("other", args.compare_bin)] * 2
    else:
        n, blocks = args.spaced_indexes, [("", None)]
    for k, (label, binary) in enumerate(blocks):
        am = w.start_archmerge(args.curl_timing, binary)
        s = spaced.Spaced(w, am, work, n, probe_bin, label if label else "")
        if label:
            s.prefix = f"b{k}"
        for mode in args.modes.split(","):
            s.measure(mode, spacings)
        am.stop()
        rows += s.rows
        logs.append((am.log_path, s.rows))
    lines = spaced.render(rows, n * (2 if args.compare_bin else 1), w.recheck)
    if args.compare_bin:
        lines += [f"`this`: {os.environ.get('ARCHMERGE_BIN', 'archmerge')}; `other`: {args.compare_bin}; "
                  "blocks this, other, this, other, each a fresh process with its own floor samples.", ""]
    if args.curl_timing and not args.compare_bin:
        for path, rs in logs:
            log = open(path).read()
            for r in rs:
                lines += report.curl_timing(log, f"spaced {r['spacing']} s, {r['mode']}"
                                            f"{', ' + r['bin'] if r['bin'] else ''}", (r["t0"], r["t1"]))
    return rows, lines


def run_spaced(w, work, args, t_start):
    rows, lines = spaced_rows(w, work, args)
    import spaced
    L = [f"# archmerge benchmark, spaced arrivals only, run took {time.time() - t_start:.0f} s", ""] + lines
    L += ["| target | measured | met |", "|---|---|---|"]
    L += [f"| {n} | {v} | {'yes' if ok else 'no'} |" for n, v, ok in spaced.target_lines(rows)]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
