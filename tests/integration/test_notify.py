"""An event when the multi-architecture image is complete (issue 24, part 2).

A small HTTPS receiver on 127.0.0.1 (Python's http.server with the test PKI's
server certificate) records what archmerge POSTs. The tests check the
signature the way docs/notify.md tells receivers to, the CloudEvents payload
against what the registry holds, a receiver down for 10 s (delivered after),
kill -9 with deliveries pending (delivered after the restart, one id each),
a wrong URL (counted, publishing not held up), a refusal event, and a
receiver that never answers not holding up SIGTERM.
"""

import hashlib
import hmac
import json
import os
import re
import signal
import socket
import ssl
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import webhook
from harness.archmerge import DEFAULT_RULE
from harness.util import client_tls_context, free_port, wait_until

SECRET = b"n0tify-s3cret"
FAST = {"retry_initial_ms": 500, "retry_max_ms": 2000, "timeout_ms": 3000}


def verified(secret: bytes, body: bytes, header: str) -> bool:
    # The five lines of docs/notify.md, word for word.
    want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, header)


class Receiver:
    """HTTPS receiver on 127.0.0.1:port; start()/stop() may repeat on the same port."""

    def __init__(self, cert, port=None, status=200):
        self.cert, self.port, self.status = cert, port or free_port(), status
        self.got = []                       # (headers dict, body bytes, path)
        self.lock = threading.Lock()
        self.server = None

    def start(self):
        rcv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with rcv.lock:
                    rcv.got.append(({k.lower(): v for k, v in self.headers.items()}, body, self.path))
                self.send_response(rcv.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert.cert, self.cert.key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}/hooks/deploy"

    def events(self):
        with self.lock:
            return [(h, b, json.loads(b)) for h, b, _ in self.got]

    def wait_events(self, n, timeout=30):
        return wait_until(lambda: (lambda e: e if len(e) >= n else None)(self.events()), timeout, 0.1,
                          message=f"receiver never got {n} event(s)")


@pytest.fixture
def receiver(env):
    r = Receiver(env.pki.server)
    try:
        yield r
    finally:
        r.stop()


def secret_file(archmerge):
    path = os.path.join(archmerge.directory, "notify.secret")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(SECRET + b"\n")            # the trailing newline is not part of the key
    return path


def config(archmerge, env, urls, events=("published", "refused", "blocked"), rule_extra=None, **notify_extra):
    notify = [dict({"url": u, "secret_file": secret_file(archmerge), "ca_file": env.ca_file,
                    "events": list(events)}, **dict(FAST, **notify_extra)) for u in urls]
    rule = dict(DEFAULT_RULE, **(rule_extra or {}))
    return archmerge.config(rules=[rule], extra={"notify": notify})


def publish(client, am, repo, version, salt):
    """Push both architectures and send their webhooks; returns the two pushed images."""
    amd = client.push_image(repo, f"{version}-amd64", arch="amd64", salt=salt)
    arm = client.push_image(repo, f"{version}-arm64", arch="arm64", salt=salt)
    for p, a in ((amd, "amd64"), (arm, "arm64")):
        status, body = am.send(*webhook.push_event(repo, p.digest, f"{version}-{a}"))
        assert status == 202, body
    return amd, arm


def wait_index(client, repo, tag, timeout=20):
    return wait_until(lambda: client.get_manifest(repo, tag), timeout, 0.05,
                      message=f"{repo}:{tag} not published")


def metric(am, env, name, **labels):
    with urllib.request.urlopen(am.url + "/metrics", context=client_tls_context(env.ca_file), timeout=5) as r:
        text = r.read().decode()
    lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{name}{{{lab}}} (\S+)$" if lab else rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def outbox_files(archmerge):
    d = os.path.join(archmerge.state_dir, "outbox")
    return sorted(f for f in os.listdir(d) if f.endswith(".json")) if os.path.isdir(d) else []


def test_published_event_is_signed_and_names_the_index_and_children(env, admin_client, archmerge, receiver):
    receiver.start()
    am = archmerge(config(archmerge, env, [receiver.url], rule_extra={"extra_tags": ["latest", "{1}"],
                                                                       "version_regex": r"^([0-9]+)\.([0-9]+)$"}))
    repo = "library/notified"
    t0 = time.monotonic()
    amd, arm = publish(admin_client, am, repo, "3.8", "n1")
    index = wait_index(admin_client, repo, "3.8")
    published_s = time.monotonic() - t0
    (headers, body, ev), = receiver.wait_events(1)
    delivered_s = time.monotonic() - t0
    assert headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    assert verified(SECRET, body, headers["x-archmerge-signature"])
    assert not verified(b"other", body, headers["x-archmerge-signature"])
    assert ev["specversion"] == "1.0" and ev["type"] == "io.archmerge.index.published"
    assert ev["source"] == f"//harbor.example.com/{repo}" and ev["subject"] == "3.8"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", ev["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ev["time"])
    assert ev["datacontenttype"] == "application/json"
    d = ev["data"]
    assert (d["registry"], d["repository"], d["tag"], d["rule"]) == ("harbor.example.com", repo, "3.8",
                                                                     "per-arch tags")
    assert d["digest"] == index.digest and d["media_type"] == index.json["mediaType"]
    kids = {(c["architecture"], c["platform"], c["digest"], c["source_repository"], c["source_tag"])
            for c in d["children"]}
    assert kids == {("amd64", "linux/amd64", amd.digest, repo, "3.8-amd64"),
                    ("arm64", "linux/arm64", arm.digest, repo, "3.8-arm64")}
    assert sorted(d["tags"]) == ["3", "latest"]
    assert 0 <= d["since_first_webhook_ms"] <= published_s * 1000 + 1000
    wait_until(lambda: metric(am, env, "archmerge_notify_deliveries_total", outcome="delivered") == 1, 10)
    assert metric(am, env, "archmerge_notify_pending") == 0
    assert outbox_files(archmerge) == []
    # A re-delivery (same webhook again): unchanged is not in events, nothing is sent.
    status, _ = am.send(*webhook.push_event(repo, arm.digest, "3.8-arm64"))
    assert status == 202
    wait_until(lambda: re.search(r"notified:3\.8 .*result=unchanged", am.log_text()), 10)
    time.sleep(0.5)
    assert len(receiver.events()) == 1
    print(f"notify: published {published_s:.2f}s after the first push, event received {delivered_s:.2f}s")


def test_unchanged_re_deliveries_only_when_asked(env, admin_client, archmerge, receiver):
    receiver.start()
    am = archmerge(config(archmerge, env, [receiver.url], events=("published", "unchanged")))
    repo = "library/notified-again"
    amd, arm = publish(admin_client, am, repo, "1.0", "u1")
    first = receiver.wait_events(1)[0][2]
    assert am.send(*webhook.push_event(repo, arm.digest, "1.0-arm64"))[0] == 202   # Harbor retried
    evs = receiver.wait_events(2)
    again = evs[1][2]
    assert first["type"] == "io.archmerge.index.published"
    assert again["type"] == "io.archmerge.index.unchanged" and again["id"] != first["id"]
    assert again["data"]["digest"] == first["data"]["digest"]


def test_refused_event_says_why(env, admin_client, archmerge, receiver):
    receiver.start()
    am = archmerge(config(archmerge, env, [receiver.url]))
    repo = "library/notified-refused"
    amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64", salt="r1")
    wrong = admin_client.push_image(repo, "1.0-arm64", arch="amd64", salt="r2")   # an amd64 image
    for p, tag in ((amd, "1.0-amd64"), (wrong, "1.0-arm64")):
        assert am.send(*webhook.push_event(repo, p.digest, tag))[0] == 202
    (headers, body, ev), = receiver.wait_events(1)
    assert verified(SECRET, body, headers["x-archmerge-signature"])
    assert ev["type"] == "io.archmerge.index.refused" and ev["subject"] == "1.0"
    assert "arm64" in ev["data"]["detail"] and "digest" not in ev["data"]
    assert any(c.get("rejected") and c["digest"] == wrong.digest for c in ev["data"]["children"])
    assert admin_client.get_manifest(repo, "1.0") is None
    # The second webhook re-ran the group: the same refusal is not sent twice.
    wait_until(lambda: len(re.findall(r"notified-refused:1\.0 .*result=refused", am.log_text())) == 2, 10)
    time.sleep(0.5)
    assert len(receiver.events()) == 1


def test_receiver_down_10s_then_delivered_and_publication_not_delayed(env, admin_client, archmerge, receiver):
    am = archmerge(config(archmerge, env, [receiver.url]))     # the receiver is not listening yet
    repo = "library/notified-later"
    t0 = time.monotonic()
    publish(admin_client, am, repo, "2.0", "d1")
    wait_index(admin_client, repo, "2.0", timeout=5)
    published_s = time.monotonic() - t0
    wait_until(lambda: re.search(r"notify result=failed .*attempt=1 ", am.log_text()), 10)
    down_until = t0 + 10
    time.sleep(max(0, down_until - time.monotonic()))
    assert receiver.events() == []
    failed = metric(am, env, "archmerge_notify_deliveries_total", outcome="failed")
    assert failed >= 3                                      # retried meanwhile, with backoff
    assert metric(am, env, "archmerge_notify_pending") == 1
    receiver.start()
    up = time.monotonic()
    (headers, body, ev), = receiver.wait_events(1, timeout=FAST["retry_max_ms"] / 1000 + 5)
    late_s = time.monotonic() - up
    assert verified(SECRET, body, headers["x-archmerge-signature"])
    assert ev["data"]["repository"] == repo
    wait_until(lambda: outbox_files(archmerge) == [], 5)
    print(f"notify: receiver down 10 s; index published in {published_s:.2f}s regardless, "
          f"{failed:.0f} failed attempts, delivered {late_s:.2f}s after the receiver came up")


def test_kill9_with_deliveries_pending_then_restart_delivers_each_once(env, admin_client, archmerge, receiver):
    cfg = config(archmerge, env, [receiver.url])
    am = archmerge(cfg)
    repo = "library/notified-kill"
    for v in ("1.0", "1.1"):
        publish(admin_client, am, repo, v, "k" + v)
        wait_index(admin_client, repo, v)
    wait_until(lambda: len(re.findall(r"notify result=queued", am.log_text())) == 2, 10)
    wait_until(lambda: re.search(r"notify result=failed", am.log_text()), 10)
    am.expect_clean_exit = False
    os.kill(am.pid, signal.SIGKILL)
    am.proc.wait(10)
    assert len(outbox_files(archmerge)) == 2
    receiver.start()
    am2 = archmerge(cfg)                                  # same state_dir
    evs = receiver.wait_events(2)
    wait_until(lambda: outbox_files(archmerge) == [], 10)
    time.sleep(1)
    evs = receiver.events()
    ids = {e["id"] for _, _, e in evs}
    assert len(ids) == 2 and len(evs) == 2                # at least once; here exactly once
    assert sorted(e["subject"] for _, _, e in evs) == ["1.0", "1.1"]
    assert all(verified(SECRET, b, h["x-archmerge-signature"]) for h, b, _ in evs)
    assert re.search(r"notify result=outbox .*pending=2", am2.log_text())


def test_wrong_url_is_counted_and_never_blocks_publishing(env, admin_client, archmerge, receiver):
    receiver.status = 404                                 # a live server, wrong path: 404
    receiver.start()
    closed = f"https://127.0.0.1:{free_port()}/nobody"     # nothing listens there
    am = archmerge(config(archmerge, env, [receiver.url + "/typo", closed]))
    repo = "library/notified-wrong"
    times = []
    for i, v in enumerate(("1.0", "1.1", "1.2")):
        t0 = time.monotonic()
        publish(admin_client, am, repo, v, f"w{i}")
        wait_index(admin_client, repo, v, timeout=5)
        times.append(time.monotonic() - t0)
    wait_until(lambda: (metric(am, env, "archmerge_notify_deliveries_total", outcome="failed") or 0) >= 4, 10)
    assert metric(am, env, "archmerge_notify_deliveries_total", outcome="delivered") == 0
    assert metric(am, env, "archmerge_notify_pending") == 6
    am.wait_log(re.compile(r"notify result=failed url=https://127\.0\.0\.1:\d+/hooks/deploy/typo .*answered 404"))
    assert max(times) < 5, times
    print(f"notify: with two failing receivers each index was published within {max(times):.2f}s")


def test_a_hanging_receiver_does_not_hold_up_shutdown(env, admin_client, archmerge):
    sink = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sink.bind(("127.0.0.1", 0))
    sink.listen(8)                                          # connects, never answers (not even TLS)
    try:
        url = f"https://127.0.0.1:{sink.getsockname()[1]}/slow"
        am = archmerge(config(archmerge, env, [url], timeout_ms=60000))
        publish(admin_client, am, "library/notified-hang", "1.0", "h1")
        wait_index(admin_client, "library/notified-hang", "1.0")
        wait_until(lambda: re.search(r"notify result=queued", am.log_text()), 10)
        time.sleep(1)                                       # the attempt is in flight now
        t0 = time.monotonic()
        assert am.stop(timeout=10) == 0
        stop_s = time.monotonic() - t0
        assert stop_s < 5, stop_s                           # not the 60 s of timeout_ms
        assert len(outbox_files(archmerge)) == 1            # kept for the next start
    finally:
        sink.close()
    print(f"notify: SIGTERM with an attempt hanging on a silent receiver: exited in {stop_s:.2f}s")
