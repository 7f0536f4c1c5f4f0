"""Attacks from 127.0.0.2 while Harbor's stand-in sender posts webhooks from
127.0.0.1 (issue 11): the allow-list refuses at accept, the per-client cap
shuts an address's surplus connections at the start of their handshake, a
wrong secret is refused from the headers (no body read, connection closed),
refusals are logged at a bounded rate, and CivetWeb's error replies carry no
request text. In the scenarios the sender's webhooks are for images really
pushed, and every index must be published. Latencies are printed
(p50/p99/max); the timed bounds are generous: the issue's p99 < 100 ms where
one address attacks through the allow-list, Harbor's 3 s client timeout with
the cap alone, the documented bound where more addresses than the cap covers
attack."""

import json
import re
import socket
import ssl
import threading
import time

import pytest

from harness import webhook
from harness.attackers import Attack
from harness.util import client_tls_context, free_port, wait_until

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


def post_one(am, payload, ct):
    """One webhook from 127.0.0.1 on its own connection: (status or 0, latency in ms)."""
    body = json.dumps(payload).encode()
    t0 = time.monotonic()
    try:
        with tls_connect(am, timeout=30) as s:
            s.sendall(b"POST /hooks/harbor HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      b"Content-Type: " + ct.encode() + b"\r\nAuthorization: " + am.webhook_auth.encode() +
                      b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            answer = read_all(s)
        status = int(answer.split(b" ", 2)[1])
    except (OSError, IndexError, ValueError):
        status = 0
    return status, (time.monotonic() - t0) * 1000


def post_webhooks(am, n, pause=0.02):
    """n push webhooks for a digest nobody pushed; (statuses, latencies in ms)."""
    statuses, lat = [], []
    for i in range(n):
        st, ms = post_one(am, *webhook.push_event("library/app", DIGEST, f"9.{i}-amd64"))
        statuses.append(st)
        lat.append(ms)
        time.sleep(pause)
    return statuses, lat


def summary(name, lat):
    s = sorted(lat)
    p = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    print(f"\n[{name}] webhooks={len(s)} p50={p(0.5):.1f}ms p99={p(0.99):.1f}ms max={s[-1]:.1f}ms")
    return p(0.99)


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




# --- Scenarios: an attack runs while Harbor's stand-in publishes real images ---

# kind -> connections/threads (the sizes)
ATTACKS = {"idle": 2000, "slowloris": 300, "bodies": 64, "flood": 8, "trickle": 64}
GROUPS = 12


def prepush(client, repo, n):
    """n groups of two per-architecture images, pushed before the attack starts."""
    return [(i, client.push_image(repo, f"{i}-amd64", arch="amd64", salt=f"{repo}{i}a"),
             client.push_image(repo, f"{i}-arm64", arch="arm64", salt=f"{repo}{i}b")) for i in range(n)]


def publish_under_attack(am, client, repo, groups, attack):
    """Every group's two webhooks while the attack runs; (statuses, latencies ms)."""
    statuses, lat = [], []
    with attack:
        for i, amd, arm in groups:
            for pushed, tag in ((amd, f"{i}-amd64"), (arm, f"{i}-arm64")):
                payload, ct = webhook.push_event(repo, pushed.digest, tag)
                st, ms = post_one(am, payload, ct)
                statuses.append(st)
                lat.append(ms)
                time.sleep(0.05)
    return statuses, lat


def assert_published(client, repo, groups, timeout=60):
    for i, amd, arm in groups:
        m = wait_until(lambda: client.get_manifest(repo, str(i)), timeout,
                       message=f"{repo}:{i} was not published")
        assert [d["digest"] for d in m.json["manifests"]] == [amd.digest, arm.digest]


def run_scenario(am, client, repo, kind, src=ATTACKER, n=None, n_groups=GROUPS):
    groups = prepush(client, repo, n_groups)
    attack = Attack(kind, am.port, am.cafile, n or ATTACKS[kind], src=src)
    statuses, lat = publish_under_attack(am, client, repo, groups, attack)
    p99 = summary(f"{repo}: {kind} x{n or ATTACKS[kind]} from {src} (attacker saw {attack.counts})", lat)
    assert statuses == [202] * len(statuses), statuses
    assert_published(client, repo, groups)
    return p99, attack.counts


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_allow_list_keeps_webhooks_fast_and_publishing(kind, env, admin_client, archmerge):
    """allowed_clients = 127.0.0.1/32; the attack comes from 127.0.0.2."""
    am = archmerge(archmerge.config(server_extra={"allowed_clients": ["127.0.0.1/32"]}))
    p99, _ = run_scenario(am, admin_client, f"library/atk-acl-{kind}", kind)
    assert p99 < 100, p99
    am.wait_log("not_allowed")


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_per_client_cap_keeps_webhooks_fast_without_allow_list(kind, env, admin_client, archmerge):
    """No allow-list; max_connections_per_client at its default (16 of the 64
    threads): one attacking address can hold at most 16 threads."""
    am = archmerge()
    p99, _ = run_scenario(am, admin_client, f"library/atk-cap-{kind}", kind)
    # Measured 11-78 ms (plain build, quiet machine). Refused attackers come
    # back 20,000 times in the run; under ASan the workers turn them away more
    # slowly, the listen backlog can overflow and a webhook's SYN is then
    # retried by the kernel after 1 s (seen once: 1.26 s). docs/limits.md.
    # The bound is Harbor's client timeout (3 s).
    assert p99 < 2_500, p99
    if kind in ("idle", "slowloris"):
        # the cap, not a timeout, closed the surplus
        am.wait_log("too_many_connections")


def test_more_addresses_than_the_cap_covers_meet_the_documented_bound(env, admin_client, archmerge):
    """No allow-list: 2,000 idle connections spread over 8 addresses (8 x 16 >
    64 threads), each closed one opened again at once. docs/limits.md: every
    thread is held and more than the listen backlog waits, so the sender's
    SYNs are dropped and retried by its kernel (1, 3, 7, 15 s): webhooks are
    late by seconds (measured p50 6.1 s, max 9.5-12.3 s) but every one is
    answered and every index published. Four groups (8 webhooks, one at a
    time): with 12 the test waited 3.5 minutes on the kernel's SYN retries;
    six deliveries at once were tried and pushed some past the sender's 30 s
    (SYNs retried 1, 3, 7, 15 s after the first compete with each other)."""
    am = archmerge()
    srcs = tuple(f"127.0.0.{k}" for k in range(2, 10))
    p99, _ = run_scenario(am, admin_client, "library/atk-spread", "idle", src=srcs, n_groups=4)
    assert p99 < 25_000, p99     # within the sender's 30 s timeout: answered, late


def test_cap_is_configurable_and_can_be_switched_off(env, admin_client, archmerge):
    """max_connections_per_client = 2: the third connection from one address is
    shut at its handshake; = 0: no cap."""
    am = archmerge(archmerge.config(server_extra={"max_connections_per_client": 2}))
    held = [tls_connect(am, src=ATTACKER) for _ in range(2)]
    try:
        third = socket.create_connection(("127.0.0.1", am.port), timeout=5, source_address=(ATTACKER, 0))
        with pytest.raises((ssl.SSLError, OSError)):
            client_tls_context(am.cafile).wrap_socket(third, server_hostname="localhost").do_handshake()
        third.close()
        with tls_connect(am) as other:          # another address is not affected
            other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_all(other).startswith(b"HTTP/1.1 200 ")
    finally:
        for s in held:
            s.close()
    # Freed: the capped address gets connections again once the held ones are
    # gone (CivetWeb frees a connection's TLS state just after the close reaches
    # the client, hence the wait).
    def get(path, src):
        try:
            with tls_connect(am, src=src, timeout=5) as s:
                s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = read_all(s)
                return answer if answer.startswith(b"HTTP/1.1 200 ") else None
        except (OSError, ssl.SSLError):
            return None
    wait_until(lambda: get(b"/healthz", ATTACKER), 10, message="the capped address never got a connection again")
    metrics = wait_until(lambda: get(b"/metrics", "127.0.0.1"), 10, message="no /metrics").decode()
    assert 'archmerge_http_refused_total{reason="too_many_connections"} ' in metrics, metrics[-2000:]
    am.wait_log("refused reason=too_many_connections remote=127.0.0.2")
    am.stop()

    off = archmerge(archmerge.config(server_extra={"max_connections_per_client": 0}))
    many = [tls_connect(off, src=ATTACKER) for _ in range(20)]
    for s in many:
        s.close()


def test_cap_applies_on_the_plain_status_listener(env, archmerge):
    """issue 23: max_connections_per_client = 2 on status_listen (plain HTTP):
    two keep-alive connections from one address are held, the third is shut
    at its first request without an answer (too_many_connections); another
    address is served, and the capped one again once the two are closed.
    Before: the status listener had no cap at all."""
    sport = free_port()
    am = archmerge(archmerge.config(server_extra={"max_connections_per_client": 2,
                                                  "status_listen": f"127.0.0.1:{sport}"}))
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

    def plain(src):
        return socket.create_connection(("127.0.0.1", sport), timeout=5, source_address=(src, 0))

    def one_answer(s):
        """One whole keep-alive answer (head and body may come in separate segments)."""
        got = b""
        while b"\r\n\r\n" not in got:
            part = s.recv(4096)
            if not part:
                return got
            got += part
        head, _, body = got.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)content-length: *(\d+)", head)
        while m and len(body) < int(m.group(1)):
            part = s.recv(4096)
            if not part:
                break
            body += part
        return head + b"\r\n\r\n" + body

    held = []
    try:
        for _ in range(2):
            s = plain(ATTACKER)
            s.sendall(req)
            assert one_answer(s).startswith(b"HTTP/1.1 200 ")   # kept alive, counted
            held.append(s)
        third = plain(ATTACKER)
        third.sendall(req)
        try:
            answer = read_all(third)
        except OSError:
            answer = b""
        third.close()
        assert answer == b"", answer
        with plain("127.0.0.1") as other:             # another address is not affected
            other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_all(other).startswith(b"HTTP/1.1 200 ")
        # a held connection still serves its next request
        held[0].sendall(req)
        assert one_answer(held[0]).startswith(b"HTTP/1.1 200 ")
    finally:
        for s in held:
            s.close()

    def again():
        try:
            with plain(ATTACKER) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return read_all(s).startswith(b"HTTP/1.1 200 ")
        except OSError:
            return False
    wait_until(again, 10, message="the capped address never got a connection again")
    am.wait_log("refused reason=too_many_connections remote=127.0.0.2")


@pytest.mark.parametrize("kind", ["trickle", "trickle405"])
def test_slow_refused_clients_from_four_addresses_meet_the_budget(kind, env, admin_client, archmerge):
    """issue 23 at full size: 64 refused clients (16 from each of 4 addresses,
    so the per-client cap does not stop them) trickling their bodies never
    quietly hold all 64 threads; each is cut CLOSING_BUDGET_MS (1 s) after
    its headers, so a webhook waits at most about that (docs/limits.md;
    before: for as long as the attacker kept sending)."""
    am = archmerge()
    srcs = tuple(f"127.0.0.{k}" for k in range(2, 6))
    p99, counts = run_scenario(am, admin_client, f"library/atk-{kind}", kind, src=srcs, n=64)
    assert p99 < 2_500, p99
    assert counts["completed"] > 64, counts     # every attacker was cut, again and again
