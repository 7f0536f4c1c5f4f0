#!/usr/bin/python3
"""`make bench`: archmerge, the floor probe and the peers on the same
registries (docker-registry on loopback, plain HTTP without auth and TLS +
bearer token) in one run; then the burst. Prints one markdown report and
writes it to bench/results/<timestamp>.md. Figures only, never asserted.

Modules: env.py (registries, token service, archmerge), floor.py (the
minimal client), peers.py (docker/buildah/podman/manifest-tool),
latency.py (per-index round-robin), burst.py (wrk burst), report.py,
scale.py (the reconcile pass over large worlds that world.py seeds)."""

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
    ap.add_argument("--section", choices=["all", "hostile", "scale"], default="all",
                    help="hostile: only the held-connections figures (bench/hostile.py); "
                         "scale: only the reconcile pass over large worlds (bench/scale.py)")
    ap.add_argument("--curl-timing", action="store_true",
                    help="archmerge at log_level debug: per-request libcurl timing breakdown in the report "
                         "(the debug log itself costs a little time)")
    ap.add_argument("--replicas", type=int, default=1,
                    help="1: archmerge runs with server.single_writer = true (6 / 4 requests); above 1: "
                         "server.replicas = N and the default source re-check after each PUT (8 / 6 requests), "
                         "and the floor rows with those HEADs are added")
    ap.add_argument("--label", default="", help="suffix of the result file name")
    scale.add_args(ap)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="archmerge-bench-")
    w = World(work, args.workers, args.max_concurrent, args.replicas)
    t_start = time.time()
    try:
        w.start()
        if args.section == "hostile":
            import hostile
            text = hostile.run(w)
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
    text = report.render(w, args, results, lat, b, time.time() - t_start, timing)
    return text + "\n" + report.scale_text(scale.run(w.factory.binary or ARCHMERGE, work, args)[0])


if __name__ == "__main__":
    main()
