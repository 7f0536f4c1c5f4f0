"""The fixed tables at their bounds (issue 25, docs/limits.md): nothing beyond
a bound is lost silently. The remembered repositories (10,000, filled from
the state file in its own format) and the list of waiting groups in /status
(256, filled by webhooks): the group beyond each bound is counted and logged,
and the next reconcile pass still publishes it once its last architecture is
pushed without a webhook."""

import json
import os
import re
import subprocess

from harness import webhook
from harness.archmerge import DEFAULT_RULE, archmerge_bin
from harness.util import wait_until

HOST = "harbor.example.com"
REPOS_MAX = 10000          # server/queue/repos.h
STATUS_MAX_WAITING = 256   # server/observe/status.h


def run_cli(*args, timeout=120):
    return subprocess.run([archmerge_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def write_config(factory, text):
    """Config + secret files for a CLI run, without starting `serve`."""
    factory._write_secret(factory.webhook_secret_file, factory.webhook_auth)
    factory._write_secret(factory.password_file, factory.registry_password)
    path = os.path.join(factory.directory, "tables.conf")
    factory._write_secret(path, text.rstrip("\n"))
    return path


def config(factory, rule_repos, literal=()):
    """Reconcile only when asked (the CLI pass below), never on its own."""
    section = {"on_start": False, "interval_s": 0}
    if literal:
        section["repositories"] = list(literal)
    return factory.config(rules=[dict(DEFAULT_RULE, repositories=list(rule_repos))],
                          extra={"reconcile": section})


def reconcile_groups(factory, text):
    p = run_cli("reconcile", "-c", write_config(factory, text), "--json")
    assert p.returncode == 0, p.stderr
    return {g["repository"] + ":" + g["version"]: g for g in json.loads(p.stdout)["groups"]}, p.stderr


def children(client, repo, tag):
    return [d["digest"] for d in client.get_manifest(repo, tag).json["manifests"]]


def test_repository_beyond_the_remembered_bound_is_reconciled(env, admin_client, archmerge):
    # the set is full: 10,000 repositories from earlier webhooks, in the file's own format
    path = os.path.join(archmerge.state_dir, "repositories")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# archmerge: repositories seen in webhooks (registry host/repository), one per line\n")
        f.writelines(f"{HOST}/library/other-{i}\n" for i in range(REPOS_MAX))
    repo = "library/tb-beyond"
    # a glob and no literal name: only the remembered set tells reconcile about the repository
    text = config(archmerge, ["library/tb-*"])
    am = archmerge(text)
    amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64")
    payload, ct = webhook.push_event(repo, amd.digest, "1.0-amd64")
    assert am.send(payload, ct)[0] == 202
    am.wait_log(re.compile(rf"assembly job=\d+ group={HOST}/{repo}:1\.0 .*result=waiting"))
    # the repository noted longest ago gave way, and the log says which
    am.wait_log(re.compile(rf"repositories forgotten .*repo={HOST}/library/other-0 for={HOST}/{repo} "
                           r"forgotten=1 max=10000"))
    am.stop()
    with open(path) as f:
        names = [line.rstrip("\n") for line in f if not line.startswith("#")]
    assert len(names) == REPOS_MAX and names[-1] == f"{HOST}/{repo}"
    assert f"{HOST}/library/other-0" not in names and f"{HOST}/library/other-1" in names

    # arm64 arrives without a webhook: the next pass finds the repository and publishes
    arm = admin_client.push_image(repo, "1.0-arm64", arch="arm64")
    groups, _ = reconcile_groups(archmerge, text)
    assert groups[f"{repo}:1.0"]["result"] == "published"
    assert children(admin_client, repo, "1.0") == [amd.digest, arm.digest]


def status(am, env):
    return webhook.request(am.url + "/status", None, None, None, env.ca_file, method="GET").data


def test_waiting_groups_beyond_the_status_bound_are_counted_and_reconciled(env, admin_client, archmerge):
    repo, n = "library/tb-waiting", STATUS_MAX_WAITING + 8
    versions = [f"2.{i}" for i in range(n)]
    amd = admin_client.push_image(repo, "2.0-amd64", arch="amd64", salt="tables")
    for v in versions[1:]:
        admin_client.put_manifest(repo, f"{v}-amd64", amd.body, amd.media_type)
    text = config(archmerge, [repo], literal=[repo])
    am = archmerge(text)
    for v in versions:
        payload, ct = webhook.push_event(repo, amd.digest, f"{v}-amd64")
        assert am.send(payload, ct)[0] == 202
    # each group is looked at three times (the webhook, two re-checks), then left waiting
    wait_until(lambda: len(re.findall(rf"group={HOST}/{repo}:\S+ .*result=waiting", am.log_text())) >= 3 * n,
               300, 0.5, message="not every waiting group was checked three times")
    st = status(am, env)
    assert len(st["waiting"]) == STATUS_MAX_WAITING
    assert st["waiting_forgotten"] >= n - STATUS_MAX_WAITING
    am.wait_log(re.compile(r"status waiting forgotten group=\S+ for=\S+ forgotten=1 max=256"))
    listed = {w["group"].rsplit(":", 1)[1] for w in st["waiting"]}
    left_out = [v for v in versions if v not in listed]
    assert len(left_out) == n - STATUS_MAX_WAITING
    am.stop()

    # every arm64 arrives without a webhook: the next pass publishes every group, the ones
    # the list left out among them
    arm = admin_client.push_image(repo, "2.0-arm64", arch="arm64", salt="tables")
    for v in versions[1:]:
        admin_client.put_manifest(repo, f"{v}-arm64", arm.body, arm.media_type)
    groups, _ = reconcile_groups(archmerge, text)
    assert all(groups[f"{repo}:{v}"]["result"] == "published" for v in versions)
    for v in left_out[:3]:
        assert children(admin_client, repo, v) == [amd.digest, arm.digest]
