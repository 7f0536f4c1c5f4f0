"""Reconcile against the real registry: the registry is the source of truth.

Tags are pushed without any webhook (Harbor dropped it, the UI added the tag,
archmerge was down), and `archmerge reconcile` or the pass inside `serve`
publishes what is complete. docker-registry 2.8 ignores `n=` on tags/list, so
the pagination test puts a small paginating HTTPS proxy in front of it.
"""

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import webhook
from harness.archmerge import DEFAULT_RULE, archmerge_bin
from harness.util import client_tls_context, wait_until

HOST = "harbor.example.com"


# ------------------------------------------------------------------ helpers

def run_cli(*args, timeout=60):
    return subprocess.run([archmerge_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def write_config(factory, text, name="reconcile.conf"):
    """Config + secret files for CLI runs, without starting `serve`."""
    factory._write_secret(factory.webhook_secret_file, factory.webhook_auth)
    factory._write_secret(factory.password_file, factory.registry_password)
    path = os.path.join(factory.directory, name)
    factory._write_secret(path, text.rstrip("\n"))
    return path


def reconcile_cfg(factory, repositories=(), rules=(DEFAULT_RULE,), registries=None, **reconcile):
    section = dict(reconcile)
    if repositories:
        section["repositories"] = list(repositories)
    kw = {"rules": list(rules), "extra": {"reconcile": section} if section else None}
    if registries is not None:
        kw["registries"] = registries
    return factory.config(**kw)


def wait_index(client, repo, tag, digest_not=None, timeout=30):
    def ready():
        m = client.get_manifest(repo, tag)
        return m if m is not None and m.digest != digest_not else None
    return wait_until(ready, timeout, message=f"{repo}:{tag} was not published")


def wait_log(am, pattern, timeout=30):
    rx = re.compile(pattern)
    return wait_until(lambda: rx.search(am.log_text()), timeout, message=f"log never matched {pattern!r}")


def children(client, repo, tag):
    return [d["digest"] for d in client.get_manifest(repo, tag).json["manifests"]]


def target_puts(env, repo, tag):
    return [e for e in env.registry.access_log() if e[0] == "PUT" and e[1] == f"/v2/{repo}/manifests/{tag}"]


def groups_by_version(report):
    return {g["version"]: g for g in report["groups"]}


# ------------------------------------------------------------------ (a) CLI, (f) report

def test_cli_publishes_without_webhook_dry_run_first(env, admin_client, archmerge):
    repo = "library/rc-cli"
    cfg = write_config(archmerge, reconcile_cfg(archmerge, [repo]))
    amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64")
    arm = admin_client.push_image(repo, "1.0-arm64", arch="arm64", fmt="oci")
    admin_client.push_image(repo, "2.0-amd64", arch="amd64", salt="two")
    admin_client.push_image(repo, "latest", arch="amd64")          # no rule's source: ignored

    # --dry-run: reports, publishes nothing
    p = run_cli("reconcile", "-c", cfg, "--dry-run", "--json")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["dry_run"] is True
    g = groups_by_version(report)
    assert set(g) == {"1.0", "2.0"}
    assert g["1.0"]["result"] == "would-publish" and g["1.0"]["complete"] is True
    assert g["1.0"]["target"] == f"{repo}:1.0" and g["1.0"]["registry"] == HOST
    assert g["2.0"]["result"] == "waiting" and g["2.0"]["missing"] == ["arm64"]
    s = report["summary"]
    assert (s["groups"], s["complete"], s["waiting"], s["would_publish"], s["published"]) == (2, 1, 1, 1, 0)
    assert s["tags"] == 4
    assert report["repositories"] == [{"registry": HOST, "repository": repo, "result": "listed", "tags": 4}]
    assert admin_client.get_manifest(repo, "1.0") is None
    assert target_puts(env, repo, "1.0") == []

    # the real run: publishes the complete group, reports the waiting one (text report)
    p = run_cli("reconcile", "-c", cfg)
    assert p.returncode == 0, p.stderr
    m = admin_client.get_manifest(repo, "1.0")
    assert m is not None and children(admin_client, repo, "1.0") == [amd.digest, arm.digest]
    lines = p.stdout.splitlines()
    assert any(re.match(rf"published\s+{HOST}/{repo}:1\.0 {re.escape(m.digest)}$", ln) for ln in lines), p.stdout
    assert any(re.match(rf"waiting\s+{HOST}/{repo}:2\.0 missing arm64$", ln) for ln in lines), p.stdout
    assert "1 complete (1 published" in lines[-1] and "1 waiting" in lines[-1], p.stdout
    # one log line per group plus a summary, on stderr
    assert re.search(rf"assembly job=\d+ group={HOST}/{repo}:1\.0 .*result=published", p.stderr)
    assert re.search(rf"reconcile group={HOST}/{repo}:2\.0 .*result=waiting detail=\"missing arm64\"", p.stderr)
    assert re.search(r"reconcile pass registries=1 repositories=1 .*groups=2 complete=1 published=1", p.stderr)

    # again: already current, no second PUT
    p = run_cli("reconcile", "-c", cfg, "--json")
    assert p.returncode == 0, p.stderr
    assert groups_by_version(json.loads(p.stdout))["1.0"]["result"] == "unchanged"
    assert len(target_puts(env, repo, "1.0")) == 1


def test_cli_report_failures_and_usage(env, admin_client, archmerge):
    repo = "library/rc-refuse"
    absent = "library/rc-never-pushed"
    cfg = write_config(archmerge, reconcile_cfg(archmerge, [repo, absent],
                                                rules=[dict(DEFAULT_RULE, architectures=["amd64", "arm64", "armv7"])]))
    admin_client.push_image(repo, "1.0-amd64", arch="amd64")
    admin_client.push_image(repo, "1.0-arm64", arch="amd64", salt="liar")   # lies about its arch
    admin_client.push_image(repo, "1.0-armv7", arch="arm", variant="v7")
    admin_client.push_image(repo, "2.0-amd64", arch="amd64")
    p = run_cli("reconcile", "-c", cfg, "--json")
    assert p.returncode == 1, p.stderr           # a refusal is a failure of the run
    report = json.loads(p.stdout)
    g = groups_by_version(report)
    assert g["1.0"]["result"] == "refused" and "tag says arm64" in g["1.0"]["detail"]
    assert g["2.0"]["result"] == "waiting" and g["2.0"]["missing"] == ["arm64", "armv7"]
    repos = {r["repository"]: r for r in report["repositories"]}
    assert repos[absent]["result"] == "absent"   # named but not pushed yet: not a failure
    assert admin_client.get_manifest(repo, "1.0") is None

    # usage and unknown registry
    assert run_cli("reconcile", "-c", cfg, "extra-arg").returncode == 2
    assert run_cli("reconcile").returncode == 2
    assert run_cli("reconcile", "-c", cfg, "--frob", "x").returncode == 2
    p = run_cli("reconcile", "-c", cfg, "--registry", "nope.example")
    assert p.returncode == 1 and "no registry" in p.stderr

    # credentials rejected: the listing fails, exit 1, named in the report
    archmerge._write_secret(archmerge.password_file, "wrong-password")
    p = run_cli("reconcile", "-c", cfg)
    assert p.returncode == 1
    assert re.search(rf"list-failed\s+{HOST}/{repo}: .*401", p.stdout), p.stdout
    assert "wrong-password" not in p.stdout + p.stderr


# ------------------------------------------------------------------ (d) moved child

def test_moved_child_republished_without_webhook(env, admin_client, archmerge):
    repo = "library/rc-moved"
    cfg = write_config(archmerge, reconcile_cfg(archmerge, rules=[dict(DEFAULT_RULE, repositories=[repo])]))
    amd = admin_client.push_image(repo, "3.1-amd64", arch="amd64")
    arm = admin_client.push_image(repo, "3.1-arm64", arch="arm64")
    assert run_cli("reconcile", "-c", cfg).returncode == 0     # the literal rule name is listed
    first = admin_client.get_manifest(repo, "3.1")
    assert children(admin_client, repo, "3.1") == [amd.digest, arm.digest]

    arm2 = admin_client.push_image(repo, "3.1-arm64", arch="arm64", salt="rebuilt")
    assert arm2.digest != arm.digest
    p = run_cli("reconcile", "-c", cfg, "--dry-run", "--json")
    assert groups_by_version(json.loads(p.stdout))["3.1"]["result"] == "would-publish"
    p = run_cli("reconcile", "-c", cfg, "--json")
    assert p.returncode == 0, p.stderr
    g = groups_by_version(json.loads(p.stdout))["3.1"]
    assert g["result"] == "published"
    second = admin_client.get_manifest(repo, "3.1")
    assert second.digest != first.digest and g["digest"] == second.digest
    assert children(admin_client, repo, "3.1") == [amd.digest, arm2.digest]


# ------------------------------------------------------------------ (b) downtime, (c) periodic

def test_serve_started_after_pushes_publishes_on_start(env, admin_client, archmerge):
    repo = "library/rc-downtime"
    amd = admin_client.push_image(repo, "4.0-amd64", arch="amd64")
    arm = admin_client.push_image(repo, "4.0-arm64", arch="arm64")
    admin_client.push_image(repo, "4.1-arm64", arch="arm64")
    am = archmerge(reconcile_cfg(archmerge, [repo]))           # on_start defaults to true; no webhook
    wait_index(admin_client, repo, "4.0")
    assert children(admin_client, repo, "4.0") == [amd.digest, arm.digest]
    wait_log(am, rf"assembly job=\d+ group={HOST}/{repo}:4\.0 .*result=published")
    wait_log(am, rf"reconcile group={HOST}/{repo}:4\.1 .*result=waiting detail=\"missing amd64\"")
    wait_log(am, r"reconcile pass registries=1 repositories=1 .*groups=2 complete=1 .*queued=1 waiting=1")
    assert "webhook " not in am.log_text()


def test_on_start_false_and_interval_zero_do_nothing(env, admin_client, archmerge):
    repo = "library/rc-off"
    admin_client.push_image(repo, "1.0-amd64", arch="amd64")
    admin_client.push_image(repo, "1.0-arm64", arch="arm64")
    am = archmerge(reconcile_cfg(archmerge, [repo], on_start=False, interval_s=0))
    # the service answers webhooks, so it is up; no pass was scheduled
    assert am.send({"type": "PULL_ARTIFACT"})[0] == 200
    assert "reconcile" not in am.log_text()
    assert admin_client.get_manifest(repo, "1.0") is None


def test_periodic_pass_publishes_tags_added_while_running(env, admin_client, archmerge):
    repo = "library/rc-periodic"
    am = archmerge(reconcile_cfg(archmerge, [repo], interval_s=1))
    wait_log(am, r"reconcile scheduled on_start=1 interval_s=1")
    wait_log(am, rf"reconcile list registry={HOST} repo={repo} result=absent")
    amd = admin_client.push_image(repo, "6.0-amd64", arch="amd64")
    arm = admin_client.push_image(repo, "6.0-arm64", arch="arm64")
    wait_index(admin_client, repo, "6.0")
    assert children(admin_client, repo, "6.0") == [amd.digest, arm.digest]
    # later passes find it current: the assembly says unchanged, nothing pushed twice
    wait_log(am, rf"assembly job=\d+ group={HOST}/{repo}:6\.0 .*result=unchanged")
    assert len(target_puts(env, repo, "6.0")) == 1
    # the third pass's summary line may follow the assembly it queued
    am.wait_log(re.compile(r"reconcile pass "), count=3)
    # SIGTERM while a pass is due every second: exits promptly and cleanly (checked at teardown)


def test_published_groups_are_skipped_and_verified_in_turn(env, admin_client, archmerge):
    """Issue 25: a regular pass reads no group whose target is listed, except a rotating
    slice (verify_per_pass); a stale index (source re-pushed, webhook lost) is found by
    that slice within ceil(published / verify_per_pass) passes, and a complete group
    without its target is published by the next pass."""
    repo = "library/rc-verify"
    for v in ("1.0", "2.0", "3.0"):
        admin_client.push_image(repo, f"{v}-amd64", arch="amd64")
        admin_client.push_image(repo, f"{v}-arm64", arch="arm64")
    am = archmerge(reconcile_cfg(archmerge, [repo], interval_s=1, verify_per_pass=1))
    wait_log(am, r"reconcile scheduled .*verify_per_pass=1 verify_on_start=1")
    # the first pass reads every group (verify_on_start): all three published
    wait_log(am, r"reconcile pass .*complete=3 .*queued=3 .*present=0 verified=0")
    for v in ("1.0", "2.0", "3.0"):
        wait_index(admin_client, repo, v)
    # a later pass reads one of the three published groups and skips two
    wait_log(am, r"reconcile pass .*complete=3 .*queued=1 .*present=2 verified=1")
    old = admin_client.get_manifest(repo, "2.0").digest
    arm2 = admin_client.push_image(repo, "2.0-arm64", arch="arm64", salt="re-pushed")   # no webhook
    amd4 = admin_client.push_image(repo, "4.0-amd64", arch="amd64")
    arm4 = admin_client.push_image(repo, "4.0-arm64", arch="arm64")
    wait_index(admin_client, repo, "4.0")
    assert children(admin_client, repo, "4.0") == [amd4.digest, arm4.digest]
    # within 4 passes (4 published groups, one per pass) the stale 2.0 is read and replaced
    wait_index(admin_client, repo, "2.0", digest_not=old)
    assert children(admin_client, repo, "2.0")[1] == arm2.digest


def test_verify_per_pass_zero_reads_no_published_group(env, admin_client, archmerge):
    """verify_on_start = false, verify_per_pass = 0: passes list, publish what lacks its
    target, and send not one request about a group whose target is listed."""
    repo = "library/rc-noverify"
    for v in ("1.0", "2.0"):
        admin_client.push_image(repo, f"{v}-amd64", arch="amd64")
        admin_client.push_image(repo, f"{v}-arm64", arch="arm64")
    cfg = write_config(archmerge, reconcile_cfg(archmerge, [repo]))
    assert run_cli("reconcile", "-c", cfg).returncode == 0       # the CLI reads and publishes all
    before = len(env.registry.access_log())
    amd3 = admin_client.push_image(repo, "3.0-amd64", arch="amd64")
    arm3 = admin_client.push_image(repo, "3.0-arm64", arch="arm64")
    am = archmerge(reconcile_cfg(archmerge, [repo], interval_s=1, verify_per_pass=0, verify_on_start=False))
    wait_index(admin_client, repo, "3.0")
    assert children(admin_client, repo, "3.0") == [amd3.digest, arm3.digest]
    am.wait_log(re.compile(r"reconcile pass .*complete=3 .*queued=0 .*present=3 verified=0"), count=1)
    seen = [e for e in env.registry.access_log()[before:] if "/manifests/" in e[1] and e[1].startswith(f"/v2/{repo}/")]
    read = [e for e in seen if re.search(r"/manifests/[12]\.0(-amd64|-arm64)?$", e[1])]
    assert read == [], read


def test_first_pass_after_a_reload_reads_every_group(env, admin_client, archmerge):
    """verify_on_start: serve's first pass and the first after SIGHUP read every group
    (other rules may make other indexes of them); the passes between read none here."""
    repo = "library/rc-reload"
    for v in ("1.0", "2.0"):
        admin_client.push_image(repo, f"{v}-amd64", arch="amd64")
        admin_client.push_image(repo, f"{v}-arm64", arch="arm64")
    am = archmerge(reconcile_cfg(archmerge, [repo], interval_s=1, verify_per_pass=0))
    wait_log(am, r"reconcile pass .*complete=2 .*queued=2 .*present=0 verified=0")
    wait_log(am, r"reconcile pass .*complete=2 .*queued=0 .*present=2 verified=0")
    am.proc.send_signal(signal.SIGHUP)
    wait_log(am, r"reconcile pass .*complete=2 .*queued=2 .*present=0 verified=2")


def test_a_first_pass_whose_listing_failed_is_owed_until_one_lists(env, admin_client, archmerge):
    """verify_on_start: serve starts while its registry answers 500 (still
    starting, or down), so the first pass lists nothing; the pass that reads
    every group is still owed, and the first one that lists is it. Before:
    the next pass was a regular one and took the published index for current
    (present=2 verified=0), so a version re-pushed while the service was down
    stayed stale until the rotation came round."""
    from harness.faultproxy import FaultProxy
    repo = "library/rc-owed"
    for v in ("1.0", "2.0"):
        admin_client.push_image(repo, f"{v}-amd64", arch="amd64")
        admin_client.push_image(repo, f"{v}-arm64", arch="arm64")
    with FaultProxy(env.registry.url, env.ca_file, env.pki.server.cert, env.pki.server.key) as proxy:
        first = archmerge(reconcile_cfg(archmerge, [repo]))
        wait_index(admin_client, repo, "1.0")
        wait_index(admin_client, repo, "2.0")
        first.stop()
        proxy.set_mode("500")
        regs = [dict(r, url=proxy.url) for r in archmerge.registries]
        am = archmerge(archmerge.config(rules=[DEFAULT_RULE], registries=regs, extra={
            "reconcile": {"repositories": [repo], "interval_s": 1, "verify_per_pass": 0},
            "retry": {"initial_ms": 100, "max_ms": 200}}))
        wait_log(am, r"reconcile pass .*list_failed=1 ")
        proxy.set_mode("pass")
        line = wait_log(am, r"reconcile pass .*list_failed=0 .*complete=2 .*").group(0)
        assert re.search(r"present=0 verified=2", line), line


# ------------------------------------------------------------------ (g) remembered repositories

def test_webhook_repositories_remembered_across_restarts(env, admin_client, archmerge):
    repo = "library/rc-remembered"
    glob_rule = dict(DEFAULT_RULE, repositories=["library/rc-rem*"])
    text = reconcile_cfg(archmerge, rules=[glob_rule])         # no literal name anywhere
    am = archmerge(text)
    amd = admin_client.push_image(repo, "7.0-amd64", arch="amd64")
    payload, ct = webhook.push_event(repo, amd.digest, "7.0-amd64")
    assert am.send(payload, ct)[0] == 202
    wait_log(am, rf"assembly job=\d+ group={HOST}/{repo}:7\.0 .*result=waiting")
    path = os.path.join(archmerge.state_dir, "repositories")
    with open(path) as f:
        assert f"{HOST}/{repo}\n" in f.read()
    assert (os.stat(path).st_mode & 0o777) == 0o600
    # a second webhook of the same repository is not written twice
    assert am.send(payload, ct)[0] == 202
    wait_until(lambda: len(re.findall(rf"assembly job=\d+ group={HOST}/{repo}:7\.0 .*result=waiting", am.log_text())) == 2,
               30, message="second webhook not assembled")
    am.stop()
    with open(path) as f:
        assert f.read().count(f"{HOST}/{repo}\n") == 1

    # arm64 arrives while archmerge is down, without any webhook
    arm = admin_client.push_image(repo, "7.0-arm64", arch="arm64")
    # the CLI reads the remembered set too (read only)
    p = run_cli("reconcile", "-c", write_config(archmerge, text), "--dry-run", "--json")
    assert p.returncode == 0, p.stderr
    assert groups_by_version(json.loads(p.stdout))["7.0"]["result"] == "would-publish"

    am2 = archmerge(text)
    wait_index(admin_client, repo, "7.0")
    assert children(admin_client, repo, "7.0") == [amd.digest, arm.digest]
    wait_log(am2, r"reconcile scheduled .*remembered=1")


def test_unusable_state_dir_refuses_to_start(env, archmerge, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    am = archmerge(archmerge.config(state_dir=str(blocker / "state")), wait=False)
    am.expect_clean_exit = False
    wait_until(lambda: am.returncode is not None, 15, message="archmerge did not exit")
    assert am.returncode == 1
    assert re.search(r"startup result=failed detail=\"state_dir .*not-a-dir/state: Not a directory", am.log_text())


# ------------------------------------------------------------------ (e) pagination

class PagingProxy:
    """HTTPS proxy on 127.0.0.1 in front of the real registry. It forwards every
    request unchanged, except GET .../tags/list?n=N, which it answers one page at
    a time (sorted, after `last`) with a Link header, as registries that honour
    n= do. mode: "path" (Link: </v2/...>), "absolute" (https://127.0.0.1:port/...),
    "query" (Link: <?n=..&last=..>), "evil" (a next page on another host),
    "null" (like "path", plus one last page answering "tags": null)."""

    def __init__(self, upstream_url, cafile, cert, key, mode="path"):
        self.upstream = urllib.parse.urlsplit(upstream_url)
        self.client_ctx = client_tls_context(cafile)
        self.mode = mode
        self.requests = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                url = urllib.parse.urlsplit(self.path)
                params = urllib.parse.parse_qs(url.query)
                page = self.command == "GET" and url.path.endswith("/tags/list") and "n" in params
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn = http.client.HTTPSConnection(proxy.upstream.hostname, proxy.upstream.port,
                                                   context=proxy.client_ctx, timeout=30)
                try:
                    conn.request(self.command, url.path if page else self.path, body=body, headers=headers)
                    r = conn.getresponse()
                    data = r.read()
                    out_headers = [(k, v) for k, v in r.getheaders()
                                   if k.lower() not in ("content-length", "transfer-encoding", "connection")]
                    status = r.status
                finally:
                    conn.close()
                proxy.requests.append((self.command, self.path, status))
                if page and status == 200:
                    data, link = proxy._page(url.path, data, int(params["n"][0]), params.get("last", [""])[0])
                    if link:
                        out_headers.append(("Link", link))
                self.send_response(status)
                for k, v in out_headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(r.getheader("Content-Length") or 0)
                                 if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _page(self, path, data, n, last):
        doc = json.loads(data)
        if last == "~":                                    # "null" mode's extra page
            doc["tags"] = None
            return json.dumps(doc).encode(), None
        tags = sorted(t for t in (doc.get("tags") or []) if t > last)
        page, more = tags[:n], len(tags) > n
        doc["tags"] = page
        link = None
        if more or self.mode == "null":
            q = urllib.parse.urlencode({"n": n, "last": page[-1] if more else "~"})
            target = {"path": f"{path}?{q}", "absolute": f"{self.url}{path}?{q}", "query": f"?{q}",
                      "evil": f"https://127.0.0.2:{self.port}{path}?{q}", "null": f"{path}?{q}"}[self.mode]
            link = f'<{target}>; rel="next"'
        return json.dumps(doc).encode(), link

    def tag_list_requests(self):
        """Answered tags/list requests (the 401 that starts the token dance is not a page)."""
        return [p for m, p, st in self.requests if m == "GET" and "/tags/list" in p and st == 200]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("mode", ["path", "absolute", "query", "null"])
def test_pagination_follows_link_headers(env, admin_client, archmerge, mode):
    repo = f"library/rc-pages-{mode}"
    pushed = {}
    for v in range(5):
        for arch in ("amd64", "arm64"):
            pushed[(v, arch)] = admin_client.push_image(repo, f"{v}.0-{arch}", arch=arch)
    for extra in ("latest", "stable", "9.9-amd64"):
        admin_client.push_image(repo, extra, arch="amd64")
    assert len(admin_client.list_tags(repo)) == 13
    with PagingProxy(env.registry.url, env.ca_file, env.pki.server.cert, env.pki.server.key, mode) as proxy:
        regs = [dict(r, url=proxy.url) for r in archmerge.registries]
        cfg = write_config(archmerge, reconcile_cfg(archmerge, [repo], registries=regs, page_size=2))
        p = run_cli("reconcile", "-c", cfg, "--json")
        assert p.returncode == 0, p.stderr + p.stdout
        report = json.loads(p.stdout)
        assert report["summary"]["tags"] == 13
        g = groups_by_version(report)
        assert sorted(g) == [f"{v}.0" for v in range(5)] + ["9.9"]
        assert all(g[f"{v}.0"]["result"] == "published" for v in range(5))
        assert g["9.9"]["result"] == "waiting"
        lists = proxy.tag_list_requests()
        assert len(lists) == (8 if mode == "null" else 7), lists   # 13 tags, 2 per page
        assert lists[0] == f"/v2/{repo}/tags/list?n=2"
        assert all("last=" in q for q in lists[1:])
    for v in range(5):
        assert children(admin_client, repo, f"{v}.0") == [pushed[(v, "amd64")].digest, pushed[(v, "arm64")].digest]


def test_pagination_refuses_link_to_another_host(env, admin_client, archmerge):
    repo = "library/rc-pages-evil"
    for v in range(3):
        for arch in ("amd64", "arm64"):
            admin_client.push_image(repo, f"{v}.0-{arch}", arch=arch)
    with PagingProxy(env.registry.url, env.ca_file, env.pki.server.cert, env.pki.server.key, "evil") as proxy:
        regs = [dict(r, url=proxy.url) for r in archmerge.registries]
        cfg = write_config(archmerge, reconcile_cfg(archmerge, [repo], registries=regs, page_size=2))
        p = run_cli("reconcile", "-c", cfg, "--json")
        assert p.returncode == 1
        report = json.loads(p.stdout)
        assert report["repositories"][0]["result"] == "failed"
        assert "another origin" in report["repositories"][0]["error"]
        assert report["groups"] == []                      # half a listing publishes nothing
        assert len(proxy.tag_list_requests()) == 1
    assert admin_client.get_manifest(repo, "0.0") is None


def test_cli_reconciles_architecture_in_repository_layout(env, admin_client, archmerge):
    """`{repo}-{arch}:{version}`: the per-architecture repositories are listed, not the target."""
    target = "library/rc-layout"
    rule = dict(DEFAULT_RULE, name="arch in repo", source="{repo}-{arch}:{version}",
                repositories=[target])
    cfg = write_config(archmerge, reconcile_cfg(archmerge, rules=(rule,)))
    amd = admin_client.push_image(f"{target}-amd64", "3.8.5", arch="amd64")
    arm = admin_client.push_image(f"{target}-arm64", "3.8.5", arch="arm64")
    admin_client.push_image(f"{target}-amd64", "3.9.0", arch="amd64", salt="only-amd")
    p = run_cli("reconcile", "-c", cfg, "--json")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    listed = sorted(r["repository"] for r in report["repositories"] if r["result"] == "listed")
    assert listed == [f"{target}-amd64", f"{target}-arm64"]
    g = groups_by_version(report)
    assert g["3.8.5"]["result"] == "published" and g["3.8.5"]["target"] == f"{target}:3.8.5"
    assert g["3.9.0"]["result"] == "waiting" and g["3.9.0"]["missing"] == ["arm64"]
    assert children(admin_client, target, "3.8.5") == [amd.digest, arm.digest]
