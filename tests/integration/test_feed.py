"""Harbor's change feed: an event source that needs no webhook (issue 21).

Harbor's webhook deliveries to private addresses can be refused after an
upgrade (`blocked non-public host`), silently. The feed polls Harbor's REST API
instead: the stand-in (harness/harbor_standin.py, written from goharbor/harbor
api/v2.0/swagger.yaml) answers the repository and artifact lists from the REAL
registry's storage, so what the tests push is what the feed sees. Webhooks are
only sent where a test says so.
"""

import json
import os
import re
import secrets
import subprocess

import pytest

from harness import webhook
from harness.archmerge import archmerge_bin
from harness.harbor_standin import HarborStandin
from harness.util import wait_until

MISSED = re.compile(r'^archmerge_events_missed_total\{source="webhook"\} (\S+)$', re.M)


# ------------------------------------------------------------------ helpers

@pytest.fixture
def harbor(env):
    h = HarborStandin(tls_cert=env.pki.server.cert, tls_key=env.pki.server.key, admin_user="admin",
                      admin_password=secrets.token_urlsafe(12), projects=("library", "team"),
                      storage_root=env.registry.storage, readers={env.robot_user: env.robot_password})
    h.start()
    try:
        yield h
    finally:
        h.stop()


def feed_config(archmerge, harbor, *, interval_s=1, grace_s=2):
    """Feed on, reconcile off: whatever gets published here came through the feed."""
    regs = [dict(archmerge.registries[0], harbor_url=harbor.url)]
    return archmerge.config(registries=regs, extra={
        "feed": {"interval_s": interval_s, "grace_s": grace_s},
        "reconcile": {"on_start": False, "interval_s": 0}})


def get(am, path):
    r = webhook.request(am.url + path, None, None, None, am.cafile, method="GET")
    assert r.status == 200, r.body
    return r.body.decode()


def missed(am) -> float:
    m = MISSED.search(get(am, "/metrics"))
    return float(m.group(1)) if m else -1.0


def wait_index(client, repo, tag, timeout=30):
    return wait_until(lambda: client.get_manifest(repo, tag), timeout, message=f"{repo}:{tag} was not published")


def published(logs, group):
    rx = re.compile(r"assembly job=\d+ group=" + re.escape(group) + r" .*result=published")
    return sum(1 for text in logs for line in text.splitlines() if rx.search(line))


def assemblies(logs, group):
    rx = re.compile(r"assembly job=\d+ group=" + re.escape(group) + r" ")
    return sum(1 for text in logs for line in text.splitlines() if rx.search(line))


def push_pair(client, repo, version, salt=""):
    amd = client.push_image(repo, f"{version}-amd64", arch="amd64", salt=salt)
    arm = client.push_image(repo, f"{version}-arm64", arch="arm64", salt=salt)
    return amd, arm


# ------------------------------------------------------------------ only the feed

def test_feed_alone_publishes_every_group_and_counts_missed_webhooks(env, admin_client, archmerge, harbor):
    am = archmerge(feed_config(archmerge, harbor))
    wait_until(lambda: "feed scheduled" in am.log_text(), 10, message="the feed did not start")
    repo1, repo2 = "library/feed-only", "library/feed-team/tool"    # a nested name: encoded twice
    push_pair(admin_client, repo1, "1.0")
    push_pair(admin_client, repo2, "2.0")
    admin_client.push_image(repo1, "latest", arch="amd64")             # no rule's source: ignored

    for repo, tag in ((repo1, "1.0"), (repo2, "2.0")):
        m = wait_index(admin_client, repo, tag)
        assert [d["platform"]["architecture"] for d in m.json["manifests"]] == ["amd64", "arm64"]
    h = env.harbor_host
    # The index is in the registry before its line is in the log (the re-check HEADs come between).
    for group in (f"{h}/{repo1}:1.0", f"{h}/{repo2}:2.0"):
        wait_until(lambda: published([am.log_text()], group) >= 1, 10, message=f"no published line for {group}")
        assert published([am.log_text()], group) == 1

    # No webhook announced any of the four source pushes: once their grace is over, each counts.
    wait_until(lambda: missed(am) == 4, 20, message="the missed-webhook counter did not reach 4")
    log = am.log_text()
    assert re.search(r"level=warn webhooks missing missed=\d+ .*harbor-setup --check.*allow_private_network_access",
                     log), log[-3000:]
    status = json.loads(get(am, "/status"))
    feed = status["feed"]
    assert feed["enabled"] is True and feed["missed_webhooks"] == 4 and feed["queued"] >= 2
    assert feed["last_error"] is None
    assert {(x["repository"], x["tag"]) for x in feed["recent_missed"]} == {
        (repo1, "1.0-amd64"), (repo1, "1.0-arm64"), (repo2, "2.0-amd64"), (repo2, "2.0-arm64")}
    assert "allow_private_network_access" in feed["hint"]
    ui = get(am, "/ui")
    assert "Change feed" in ui and "feed-only:1.0-amd64" in ui
    # The feed asked Harbor the way the swagger says, and only through list calls.
    assert harbor.violations == []
    assert harbor.writes() == []
    assert any(f"/repositories/feed-team%252Ftool/artifacts" in c.path for c in harbor.feed_calls())


def test_webhook_first_is_neither_missed_nor_run_twice(env, admin_client, archmerge, harbor):
    am = archmerge(feed_config(archmerge, harbor, grace_s=1))
    wait_until(lambda: "feed scheduled" in am.log_text(), 10, message="the feed did not start")
    repo = "library/feed-hooked"
    for p, tag in zip(push_pair(admin_client, repo, "1.0"), ("1.0-amd64", "1.0-arm64")):
        payload, ct = webhook.push_event(repo, p.digest, tag)
        assert am.send(payload, ct)[0] == 202
    wait_index(admin_client, repo, "1.0")
    wait_until(lambda: published([am.log_text()], f"{env.harbor_host}/{repo}:1.0") >= 1, 10)
    # several feed passes past the grace period
    n = json.loads(get(am, "/status"))["feed"]["passes"]
    wait_until(lambda: json.loads(get(am, "/status"))["feed"]["passes"] >= n + 3, 15)
    assert missed(am) == 0
    assert "feed result=queued" not in am.log_text()
    assert assemblies([am.log_text()], f"{env.harbor_host}/{repo}:1.0") <= 2   # the webhooks' own
    assert published([am.log_text()], f"{env.harbor_host}/{repo}:1.0") == 1


# ------------------------------------------------------------------ what an idle pass costs

def passes(am) -> int:
    return json.loads(get(am, "/status"))["feed"]["passes"]


def test_idle_pass_reads_one_repository_page_per_project(env, admin_client, archmerge, harbor):
    """Nothing pushed: a pass is one repository page per covered project (the rules cover
    `library`), no artifact page. Harbor moves a repository's update_time on every pull too
    (src/pkg/repository/dao/dao.go AddPullCount), so a repository the feed already looked at
    is read again only when its update_time moves, once, not on every pass until the next push."""
    am = archmerge(feed_config(archmerge, harbor))
    wait_until(lambda: "feed scheduled" in am.log_text(), 10, message="the feed did not start")
    repo = "library/feed-idle"
    push_pair(admin_client, repo, "1.0")
    wait_index(admin_client, repo, "1.0")
    wait_until(lambda: published([am.log_text()], f"{env.harbor_host}/{repo}:1.0") >= 1, 10)
    harbor.pulled(repo)                     # archmerge's own reads, say, or any pull
    n = passes(am)
    wait_until(lambda: passes(am) >= n + 2, 15)   # the index's push and the pull are looked at

    mark, n = len(harbor.calls), passes(am)
    wait_until(lambda: passes(am) >= n + 3, 15)
    calls = [c for c in harbor.calls[mark:] if "/repositories" in c.path]
    done = passes(am) - n
    assert [c.path for c in calls if "/artifacts" in c.path] == []
    assert all("/projects/library/repositories?" in c.path and "page=1&" in c.path for c in calls), calls
    assert done <= len(calls) <= done + 1, (done, [c.path for c in calls])
    assert harbor.violations == []

    # A pull later: that repository's artifacts are read once, then never again while idle.
    harbor.pulled(repo)
    n = passes(am)
    wait_until(lambda: passes(am) >= n + 3, 15)
    arts = [c for c in harbor.calls[mark:] if "/artifacts" in c.path]
    assert len(arts) == 1, [c.path for c in arts]

    # What the feed skips is only what it read: a new push into that repository is published.
    push_pair(admin_client, repo, "2.0", salt="two")
    wait_index(admin_client, repo, "2.0")
    assert harbor.violations == []


# ------------------------------------------------------------------ across a restart

def test_feed_across_restart_misses_nothing_and_runs_nothing_twice(env, admin_client, archmerge, harbor):
    h = env.harbor_host
    repo = "library/feed-restart"
    cfg = feed_config(archmerge, harbor)
    am1 = archmerge(cfg)
    wait_until(lambda: "feed scheduled" in am1.log_text(), 10, message="the feed did not start")
    push_pair(admin_client, repo, "1.0")
    wait_index(admin_client, repo, "1.0")
    wait_until(lambda: published([am1.log_text()], f"{h}/{repo}:1.0") >= 1, 10)
    cursor = os.path.join(archmerge.state_dir, "feed-cursor")
    wait_until(lambda: os.path.exists(cursor), 10, message="no cursor was saved")
    assert am1.stop() == 0

    # Pushed while archmerge is down: no webhook could have come, the feed must catch up.
    push_pair(admin_client, repo, "2.0", salt="two")
    admin_client.push_image("library/feed-restart-b", "3.0-amd64", arch="amd64")
    admin_client.push_image("library/feed-restart-b", "3.0-arm64", arch="arm64")

    am2 = archmerge(cfg)
    wait_index(admin_client, repo, "2.0")
    wait_index(admin_client, "library/feed-restart-b", "3.0")
    for group in (f"{h}/{repo}:2.0", f"{h}/library/feed-restart-b:3.0"):
        wait_until(lambda: published([am2.log_text()], group) >= 1, 10, message=f"no published line for {group}")
    logs = [am1.log_text(), am2.log_text()]
    # every group ran exactly once over both lives (the cursor kept 1.0 from running again)
    for group in (f"{h}/{repo}:1.0", f"{h}/{repo}:2.0", f"{h}/library/feed-restart-b:3.0"):
        assert assemblies(logs, group) == 1, (group, logs[1][-3000:])
        assert published(logs, group) == 1
    # pushes made while archmerge was down are not webhooks it missed
    n = json.loads(get(am2, "/status"))["feed"]["passes"]
    wait_until(lambda: json.loads(get(am2, "/status"))["feed"]["passes"] >= n + 3, 15)
    assert missed(am2) == 0
    assert assemblies([am2.log_text()], f"{h}/{repo}:1.0") == 0
    with open(cursor) as f:
        doc = json.load(f)
    assert doc["version"] == 1 and any(c["project"] == "library" and c["registry"] == h for c in doc["cursors"])


# ------------------------------------------------------------------ harbor-setup --check

def run_cli(*args, timeout=60):
    return subprocess.run([archmerge_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def write_secret(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return path


def test_harbor_setup_check_says_why_deliveries_fail(env, admin_client, archmerge, harbor, tmp_path):
    am = archmerge()
    pwfile = write_secret(str(tmp_path / "harbor.pw"), harbor.admin_password)
    base = ("harbor-setup", "-c", am.config_path, "--harbor-url", harbor.url, "--harbor-user", "admin",
            "--harbor-password-file", pwfile, "--project", "library")
    p = run_cli(*base)
    assert p.returncode == 0, p.stderr + p.stdout
    admin_client.push_image("library/feed-check", "1.0-amd64", arch="amd64")
    harbor.add_delivery("library", "archmerge", status="Success")
    harbor.add_delivery("library", "archmerge", status="Error", message="failed to send the webhook",
                        log="2026-12-07T06:00:00Z [INFO] [http.go:71]: sending PUSH_ARTIFACT to "
                            f"{am.webhook_url}\n2026-12-07T06:00:00Z [ERROR] [http.go:98]: "
                            "blocked non-public host 127.0.0.1\n")
    n_writes = len(harbor.writes())
    p = run_cli(*base, "--check")
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "blocked non-public host" in out, out
    assert "allow_private_network_access" in out, out
    assert re.search(r"project library: webhook policy \"archmerge\" \(id \d+\): 1 of the last 2 deliveries failed",
                     out), out
    # the robot's list permissions are checked with the registry's credentials
    assert f"project library: robot {env.robot_user} can list repositories and artifacts" in out, out
    assert len(harbor.writes()) == n_writes           # --check changes nothing
    assert harbor.violations == []

    # A robot without the list permissions is named as such.
    harbor.deny_list.add(env.robot_user)
    p = run_cli(*base, "--check")
    assert p.returncode == 1
    assert "list repository" in p.stderr and "403" in p.stderr, p.stderr
