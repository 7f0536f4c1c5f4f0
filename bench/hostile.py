"""`make bench BENCH_ARGS="--section hostile"`: webhook latency while other
clients hold connections (issue 11, docs/limits.md). Idle = bare TCP
connections that never send a TLS hello (each holds a CivetWeb thread until
header_timeout_ms, like an idle TLS connection). Figures only, no asserts."""

import json
import socket
import time

from harness import webhook

DIGEST = "sha256:" + "ef" * 32


def _idle(port, n, srcs):
    """n bare connections spread round-robin over the source addresses srcs."""
    socks = []
    for k in range(n):
        s = socket.socket()
        s.bind((srcs[k % len(srcs)], 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            socks.append(s)
        except OSError:
            s.close()
    return socks


def _webhooks(am, n, tag):
    lat, bad = [], 0
    for i in range(n):
        payload, ct = webhook.push_event("library/app", DIGEST, f"{tag}.{i}-amd64")
        t0 = time.monotonic()
        try:
            status, _ = am.send(payload, content_type=ct)
        except Exception:   # noqa: BLE001 - a timeout is a figure here
            status = 0
        lat.append((time.monotonic() - t0) * 1000)
        bad += status != 202
        time.sleep(0.05)
    s = sorted(lat)
    q = lambda p: s[min(len(s) - 1, int(p * len(s)))]
    return q(0.5), q(0.99), s[-1], bad


ADDRS = tuple(f"127.0.0.{k}" for k in range(2, 10))

# (label, server settings, source addresses of the held connections, counts)
SCENARIOS = (
    ("no allow-list, cap 0 (off), held from one address", {"max_connections_per_client": 0},
     ADDRS[:1], (0, 63, 64, 128)),
    ("no allow-list, cap 16, held from one address", {}, ADDRS[:1], (64, 1000)),
    ("no allow-list, cap 16, held from 4 addresses", {}, ADDRS[:4], (60, 64, 128)),
    ("no allow-list, cap 16, held from 8 addresses", {}, ADDRS, (128,)),
    ("allow-list 127.0.0.1/32, held from outside it", {"allowed_clients": ["127.0.0.1/32"]},
     ADDRS[:1], (1000,)),
)


def run(bench):
    """bench: a started run.Bench (registry, token service, factory). Webhooks
    come from 127.0.0.1; the held connections from 127.0.0.2-9."""
    rows = ["## hostile", "", "64 threads, header_timeout_ms 2000, 20 webhooks per row.", "",
            "| scenario | held connections | p50 ms | p99 ms | max ms | not 202 |",
            "|---|---|---|---|---|---|"]
    for i, (label, extra, srcs, counts) in enumerate(SCENARIOS):
        am = bench.factory(bench.factory.config(server_extra=dict(extra, max_connections=64)))
        for n in counts:
            held = _idle(am.port, n, srcs)
            time.sleep(0.3)
            p50, p99, mx, bad = _webhooks(am, 20, f"{i}x{n}")
            for s in held:
                s.close()
            rows.append(f"| {label} | {n} | {p50:.1f} | {p99:.1f} | {mx:.1f} | {bad} |")
            time.sleep(2.5)   # let header_timeout_ms cut what is left
        am.stop()
    return "\n".join(rows) + "\n"
