"""`make bench BENCH_ARGS="--section hostile"`: webhook latency while other
clients hold connections (issue 11, docs/limits.md). Idle = bare TCP
connections that never send a TLS hello (each holds a CivetWeb thread until
header_timeout_ms, like an idle TLS connection). Figures only, no asserts."""

import json
import socket
import time

from harness import webhook

DIGEST = "sha256:" + "ef" * 32


def _idle(port, n, src):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
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


def run(bench):
    """bench: a started run.Bench (registry, token service, factory)."""
    rows = ["## hostile", "", "| scenario | held connections | webhooks | p50 ms | p99 ms | max ms | not 202 |",
            "|---|---|---|---|---|---|---|"]
    threads = 64
    for allow, src, counts in ((False, "127.0.0.1", (0, 32, 63, 64, 96, 128)),
                               (True, "127.0.0.2", (1000,))):
        extra = {"max_connections": threads}
        if allow:
            extra["allowed_clients"] = ["127.0.0.1/32"]
        am = bench.factory(bench.factory.config(server_extra=extra))
        for n in counts:
            held = _idle(am.port, n, src)
            time.sleep(0.3)
            p50, p99, mx, bad = _webhooks(am, 20, f"{int(allow)}{n}")
            for s in held:
                s.close()
            name = ("allow-list 127.0.0.1/32, held from 127.0.0.2" if allow
                    else f"no allow-list, held from the sender's address ({threads} threads)")
            rows.append(f"| {name} | {n} | 20 | {p50:.1f} | {p99:.1f} | {mx:.1f} | {bad} |")
            time.sleep(2.5)   # let header_timeout_ms cut what is left
        am.stop()
    return "\n".join(rows) + "\n"
