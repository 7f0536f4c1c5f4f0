"""Replicas and reloads: what is published stays right when the configuration
or another instance moves underneath an assembly (issue 9 points 2b and 4).

Only the real binary, a real docker-registry and its token service; tags are
put in place with skopeo and no webhook, so the reconcile pass is what sees them.
"""

import os
import re
import signal

from harness.archmerge import DEFAULT_RULE
from harness.util import wait_until

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
