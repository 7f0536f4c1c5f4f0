"""Attacks from 127.0.0.2 while Harbor's stand-in sender posts webhooks from
127.0.0.1 (issue 11): the allow-list refuses at accept, a wrong secret is
refused from the headers (no body read, connection closed), refusals are
logged at a bounded rate, and CivetWeb's error replies carry no request text.
Latencies are printed (p50/p99/max); the only timed bound is the issue's
generous p99 < 100 ms with the allow-list."""

import json
import socket
import ssl
import threading
import time

from harness import webhook
from harness.util import client_tls_context

ATTACKER = "127.0.0.2"
DIGEST = "sha256:" + "cd" * 32


def tls_connect(am, src="127.0.0.1", timeout=10.0):
    raw = socket.create_connection(("127.0.0.1", am.port), timeout=timeout, source_address=(src, 0))
    return client_tls_context(am.cafile).wrap_socket(raw, server_hostname="localhost")


def read_all(sock):
    got = b""
    try:
        while True:
            part = sock.recv(65536)
            if not part:
                break
            got += part
    except OSError:
        pass
    return got


def post_webhooks(am, n, pause=0.02):
    """n real push webhooks from 127.0.0.1, one connection each; (statuses, latencies in ms)."""
    statuses, lat = [], []
    for i in range(n):
        payload, ct = webhook.push_event("library/app", DIGEST, f"9.{i}-amd64")
        body = json.dumps(payload).encode()
        t0 = time.monotonic()
        try:
            with tls_connect(am, timeout=30) as s:
                s.sendall(b"POST /hooks/harbor HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          b"Content-Type: " + ct.encode() + b"\r\nAuthorization: " + am.webhook_auth.encode() +
                          b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                answer = read_all(s)
            statuses.append(int(answer.split(b" ", 2)[1]))
        except (OSError, IndexError, ValueError):
            statuses.append(0)
        lat.append((time.monotonic() - t0) * 1000)
        time.sleep(pause)
    return statuses, lat


def summary(name, lat):
    s = sorted(lat)
    p = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    print(f"\n[{name}] webhooks={len(s)} p50={p(0.5):.1f}ms p99={p(0.99):.1f}ms max={s[-1]:.1f}ms")
    return p(0.99)


def hold_idle(n, am, src=ATTACKER):
    """n bare TCP connections from src (no TLS hello): what an idle flood costs."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", am.port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def test_header_injection_reply_has_no_request_text(archmerge):
    am = archmerge()
    with tls_connect(am, src=ATTACKER) as s:
        s.sendall(b"GET /healthz HTTP/1.1 x\r\nSet-Cookie: injected=1\r\n\r\n")
        answer = read_all(s)
    head = answer.split(b"\r\n\r\n", 1)[0]
    print("\nreply:", answer[:200])
    assert head.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"injected" not in answer and b"HTTP/1.1 x" not in answer and b"Set-Cookie" not in answer
    assert b"healthz" not in answer


def test_fixed_error_replies_carry_exactly_their_content_length(archmerge):
    """CivetWeb's own refusals (unknown path, malformed request line) are
    archmerge's fixed JSON; the Content-Length must be the body's length, or
    clients wait for a byte that never comes (curl: exit 18, found by the
    image's smoke test)."""
    am = archmerge()
    for request in (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    b"GET /healthz HTTP/1.1 x\r\n\r\n"):
        with tls_connect(am) as s:
            s.sendall(request)
            answer = read_all(s)
        head, _, body = answer.partition(b"\r\n\r\n")
        lengths = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")]
        assert lengths == [len(body)], answer
        assert json.loads(body)["status"] == "rejected", answer


def test_wrong_secret_is_refused_before_the_body_and_closed(archmerge):
    am = archmerge()
    with tls_connect(am, src=ATTACKER) as s:
        s.sendall(b"POST /hooks/harbor HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer wrong\r\nContent-Length: 1048576\r\n\r\n")
        t0 = time.monotonic()
        s.settimeout(5)
        answer = read_all(s)          # returns when the server closes; no body byte was sent
        took = time.monotonic() - t0
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert took < 4, took             # closed at once, not after a body timeout
    m = am.metrics() if hasattr(am, "metrics") else None
    assert m is None or "unauthorized" in m


def test_allow_list_attacks_leave_webhooks_fast(archmerge):
    """allowed_clients = 127.0.0.1/32: 1,000 idle connections, 64 senders of 1 MB
    bodies with a wrong secret and a wrong-secret flood, all from 127.0.0.2."""
    am = archmerge(archmerge.config(server_extra={"allowed_clients": ["127.0.0.1/32"]}))
    stop = threading.Event()
    refused = [0]

    def flood():
        while not stop.is_set():
            try:
                s = socket.socket()
                s.bind((ATTACKER, 0))
                s.settimeout(2)
                s.connect(("127.0.0.1", am.port))
                s.sendall(b"x" * 1024)
                s.recv(1)
                refused[0] += 1
                s.close()
            except OSError:
                refused[0] += 1
    idle = hold_idle(1000, am)
    threads = [threading.Thread(target=flood, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        statuses, lat = post_webhooks(am, 60)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        for s in idle:
            s.close()
    p99 = summary("allow-list, idle+flood from 127.0.0.2", lat)
    assert statuses == [202] * len(statuses), statuses
    assert refused[0] > 0
    assert p99 < 100, p99
    log = am.log_text()
    assert "refused" in log and "not_allowed" in log
    assert len(log) < 100_000


def test_wrong_secret_flood_log_is_bounded(archmerge):
    """No allow-list: 8 threads flood wrong-secret webhooks for 6 s; the log stays small."""
    am = archmerge()
    stop = threading.Event()
    sent = [0]
    before = len(am.log_text())

    def flood():
        while not stop.is_set():
            try:
                with tls_connect(am, src=ATTACKER, timeout=5) as s:
                    s.sendall(b"POST /hooks/harbor HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer no\r\n"
                              b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                    read_all(s)
                sent[0] += 1
            except (OSError, ssl.SSLError):
                pass
    threads = [threading.Thread(target=flood, daemon=True) for _ in range(8)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    statuses, lat = post_webhooks(am, 30, pause=0.1)
    time.sleep(max(0, 6 - (time.monotonic() - t0)))
    stop.set()
    for t in threads:
        t.join(10)
    secs = time.monotonic() - t0
    # The attack's share of the log: all but the sender's webhooks and their assemblies.
    lines = am.log_text()[before:].splitlines()
    grown = sum(len(x) + 1 for x in lines if "remote=127.0.0.1 " not in x and " assembly " not in x)
    summary(f"no allow-list, wrong-secret flood ({sent[0]} requests in {secs:.0f}s, log +{grown} B)", lat)
    assert statuses == [202] * len(statuses), statuses
    assert sent[0] > 100
    # Refusals: a few lines per 10 s interval plus the webhooks' own lines.
    assert grown / secs * 60 < 100_000, grown


def test_allowed_clients_are_validated(archmerge, tmp_path):
    from harness.archmerge import archmerge_bin
    import subprocess
    text = archmerge.config(server_extra={"allowed_clients": ["10.0.0.0/8", "10.0.0.1/8", "fd00::/8",
                                                               "300.1.1.1", "1.2.3.4/33"]})
    path = tmp_path / "a.conf"
    path.write_text(text)
    p = subprocess.run([archmerge_bin(), "check-config", "-c", str(path)], capture_output=True, text=True)
    assert p.returncode == 1
    assert "allowed_clients[1] \"10.0.0.1/8\" has host bits set" in p.stderr, p.stderr
    assert "allowed_clients[3] \"300.1.1.1\" is not" in p.stderr
    assert "allowed_clients[4] \"1.2.3.4/33\" has a prefix length" in p.stderr
    assert "allowed_clients[0]" not in p.stderr and "allowed_clients[2]" not in p.stderr
    assert str(path) + ":" in p.stderr


def test_without_allow_list_the_documented_bound_holds(archmerge):
    """No allow-list: 96 idle connections and 40 slowloris ones (a header byte
    every 0.2 s) from 127.0.0.2, more than the 64 threads. docs/limits.md: a
    webhook waits at most about header_timeout_ms per 64 held connections
    (here 3 x 2 s; before the fix 10 s); the assertion allows 8 s."""
    am = archmerge()
    stop = threading.Event()

    def slowloris():
        while not stop.is_set():
            try:
                with tls_connect(am, src=ATTACKER, timeout=5) as s:
                    s.settimeout(0.2)
                    for b in b"POST /hooks/harbor HTTP/1.1\r\nX-Slow: " + b"s" * 10000:
                        if stop.is_set():
                            break
                        s.send(bytes([b]))
                        time.sleep(0.2)
            except (OSError, ssl.SSLError):
                pass
    idle = hold_idle(96, am)
    threads = [threading.Thread(target=slowloris, daemon=True) for _ in range(40)]
    for t in threads:
        t.start()
    try:
        statuses, lat = post_webhooks(am, 20, pause=0.1)
    finally:
        stop.set()
        for s in idle:
            s.close()
        for t in threads:
            t.join(5)
    summary("no allow-list, 96 idle + 40 slowloris from 127.0.0.2", lat)
    assert statuses == [202] * len(statuses), statuses
    assert max(lat) < 8_000, max(lat)     # before: 10 s (request_timeout_ms held the headers)
