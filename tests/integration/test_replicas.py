"""Replicas and reloads: what is published stays right when the configuration
or another instance moves underneath an assembly (issue 9 points 2b and 4).

Only the real binary, a real docker-registry and its token service; tags are
put in place with skopeo and no webhook, so the reconcile pass is what sees them.
"""

import os
import re
import signal
import subprocess
import time

from harness import webhook
from harness.archmerge import DEFAULT_RULE, archmerge_bin
from harness.faultproxy import FaultProxy
from harness.util import free_port, wait_until

HOST = "harbor.example.com"

SOLO_RULE = {
    "name": "solo",
    "repositories": ["team/*"],
    "source": "{repo}:{version}-{arch}",
    "target": "{repo}:{version}-solo",
    "architectures": ["amd64"],
    "format": "oci",
}


def _write_config(path, text):
    fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(path + ".new", path)


def _reconcile_cfg(factory, rules):
    return factory.config(rules=list(rules),
                          extra={"reconcile": {"interval_s": 3, "repositories": ["library/app"]}})


def test_reload_reordering_rules_keeps_groups_on_their_rule(env, admin_client, skopeo, archmerge):
    repo, stage = "library/app", "stage/rr-src"
    amd = admin_client.push_image(stage, "amd64", arch="amd64", salt="rr.1")
    arm = admin_client.push_image(stage, "arm64", arch="arm64", salt="rr.1")
    am = archmerge(_reconcile_cfg(archmerge, [DEFAULT_RULE]))
    wait_until(lambda: re.search(r"reconcile scheduled on_start=1 interval_s=3", am.log_text()), 20)

    # The reload puts a new rule first: every rule index moves by one.
    _write_config(am.config_path, _reconcile_cfg(archmerge, [SOLO_RULE, DEFAULT_RULE]))
    am.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: re.search(r"reload file=\S+ result=ok ", am.log_text()), 20)

    # Per-architecture tags appear without any webhook: only the periodic pass finds them.
    host = env.registry.host
    skopeo.copy(f"{host}/{stage}:amd64", f"{host}/{repo}:rr.1-amd64")
    skopeo.copy(f"{host}/{stage}:arm64", f"{host}/{repo}:rr.1-arm64")

    m = wait_until(lambda: admin_client.get_manifest(repo, "rr.1"), 30,
                   message=f"{repo}:rr.1 was not published by the periodic reconcile")
    assert sorted(d["digest"] for d in m.json["manifests"]) == sorted([amd.digest, arm.digest])
    # Two more passes: still nothing under the other rule's target.
    n = len(re.findall(r"reconcile pass ", am.log_text()))
    wait_until(lambda: len(re.findall(r"reconcile pass ", am.log_text())) >= n + 2, 30)
    assert admin_client.get_manifest(repo, "rr.1-solo") is None
    assert "rr.1-solo" not in admin_client.list_tags(repo)


# ------------------------------------------------------------------ two replicas (issue 9 point 4)

ROUNDS = 50


def _hook(am, repo, digest, tag):
    status, _ = am.send(*webhook.push_event(repo, digest, tag))
    assert status == 202, status


def _children(client, repo, tag):
    m = client.get_manifest(repo, tag)
    return None if m is None else sorted(d["digest"] for d in m.json["manifests"])


def _rebuild_race(env, admin_client, archmerge, tmp_path, server, rounds, tag):
    """Two `serve` processes, separate state_dirs, one registry; B's registry
    answers are delayed 0.4 s while it reads. Each round: the webhook that
    completes app:<tag>.N goes to B; while B reads, amd64 is rebuilt and its
    webhook goes to A; A publishes the newer index before B's PUT lands.
    Returns the versions whose final index is stale and those that were late."""
    repo = "library/app"
    old_amd = admin_client.push_image(repo, None, arch="amd64", salt="replica-old")
    new_amd = admin_client.push_image(repo, None, arch="amd64", salt="replica-new")
    arm = admin_client.push_image(repo, None, arch="arm64", salt="replica")
    quiet = {"reconcile": {"on_start": False, "interval_s": 0}}
    proxy = FaultProxy(env.registry.url, env.ca_file, env.pki.server.cert, env.pki.server.key).start()
    try:
        a = archmerge(archmerge.config(extra=quiet, server_extra=server))
        b_state = str(tmp_path / "state-b")
        os.makedirs(b_state, mode=0o700)
        b = archmerge(archmerge.config(port=free_port(), state_dir=b_state, extra=quiet, server_extra=server,
                                       registries=[dict(r, url=proxy.url) for r in archmerge.registries]))
        newest = sorted([new_amd.digest, arm.digest])
        stale, late = [], []
        for n in range(1, rounds + 1):
            version = f"{tag}.{n}"
            src_amd, src_arm = f"{version}-amd64", f"{version}-arm64"
            proxy.set_mode("slow", delay=0.4)
            admin_client.put_manifest(repo, src_arm, arm.body, arm.media_type)
            admin_client.put_manifest(repo, src_amd, old_amd.body, old_amd.media_type)
            seen = len(proxy.requests(f"/manifests/{src_arm}"))
            _hook(b, repo, old_amd.digest, src_amd)
            # B has the old amd64 in hand once it asks for arm64 (rule order); its answer is 0.4 s away.
            wait_until(lambda: len(proxy.requests(f"/manifests/{src_arm}")) > seen, 10)
            time.sleep(0.45)
            admin_client.put_manifest(repo, src_amd, new_amd.body, new_amd.media_type)   # rebuilt
            _hook(a, repo, new_amd.digest, src_amd)
            wait_until(lambda: _children(admin_client, repo, version) == newest, 10,
                       message=f"replica A did not publish {repo}:{version}")
            proxy.set_mode("pass")
            rx = re.compile(rf"assembly job=\d+ group={HOST}/{re.escape(repo)}:{re.escape(version)} ")
            wait_until(lambda: rx.search(b.log_text()), 15, message=f"replica B never finished {version}")
            # B is done with the group: what stays is the final answer.
            try:
                wait_until(lambda: _children(admin_client, repo, version) == newest, 2)
            except TimeoutError:
                late.append(version)
            if _children(admin_client, repo, version) != newest:
                stale.append(version)
        print(f"two writers, server {server}: {rounds} rounds, stale finals {len(stale)}: {stale}")
        exercised = bool(re.search(r"assembly source moved", b.log_text()))
        return stale, late, exercised
    finally:
        proxy.stop()


def test_two_replicas_converge_on_newest_children(env, admin_client, archmerge, tmp_path):
    # Both told they are replicas: each re-checks its sources after a PUT.
    stale, late, exercised = _rebuild_race(env, admin_client, archmerge, tmp_path, {"replicas": 2}, ROUNDS, "r")
    assert not stale and not late, f"{len(stale)} stale finals in {ROUNDS} rounds: {stale}; late: {late}"
    assert exercised, "the race was not exercised"


DEFAULT_ROUNDS = 20


def test_two_writers_with_the_default_configuration_converge(env, admin_client, archmerge, tmp_path):
    """Issue 22.2: nothing in the configuration says there are two writers (a
    rolling update, `archmerge assemble` beside `serve`); the default must still
    re-check (before: 19 stale finals in 20 rounds)."""
    stale, late, exercised = _rebuild_race(env, admin_client, archmerge, tmp_path, {}, DEFAULT_ROUNDS, "d")
    assert not stale and not late, f"{len(stale)} stale finals in {DEFAULT_ROUNDS} rounds: {stale}; late: {late}"
    assert exercised, "the race was not exercised"


# ------------------------------------------------------------------ cleanup with replicas (issue 22 §3)

def test_cleanup_with_replicas_is_refused(archmerge):
    """With two writers, replica A's older PUT can land after replica B
    published the newer index and cleaned up both per-architecture tags:
    nothing is left to notice it, and the newer children end up untagged and
    unreferenced. check-config refuses cleanup unless the instance is declared
    the single writer (which itself refuses replicas above 1)."""
    archmerge().stop()   # writes the secret files the configuration names
    cleaning = dict(DEFAULT_RULE, cleanup=True)
    path = os.path.join(archmerge.directory, "replicas-cleanup.conf")
    for server, rc in (({"replicas": 2}, 1), ({}, 1), ({"single_writer": True}, 0)):
        _write_config(path, archmerge.config(rules=[cleaning], server_extra=server))
        p = subprocess.run([archmerge_bin(), "check-config", "-c", path], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        assert p.returncode == rc, (server, p.stderr)
        if rc:
            assert re.search(r":\d+: rules\[0\]\.cleanup = true needs server\.single_writer = true",
                             p.stderr), p.stderr
