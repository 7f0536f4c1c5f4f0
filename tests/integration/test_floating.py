"""Floating extra tags against the real registry (issue 22 part 1).

A tag that several versions write ("latest", "{major}.{minor}") moves to a
version only when no higher version of the rule is published, as the target
repository's tag list tells. The issue's sequence: 3.8.4, 3.8.5, 3.9.0 in
order; a security rebuild of 3.8.4; 3.7.1 published late; 3.9.1; 3.10.0
(numeric order, not text). After each step the digests of `latest` and of
every `{major}.{minor}` tag are checked. Then a missing `latest` is
re-created by `archmerge reconcile` for the highest version, and
check-config reports a rule whose floating tags have no order.

Real: the registry, the token service, archmerge. Tag removal for the
reconcile case goes through the registry's storage (as the Harbor stand-in
of test_sources.py does), since the distribution API can only delete a
manifest with every tag on it."""

import os
import re
import shutil
import subprocess

from harness import webhook
from harness.archmerge import archmerge_bin
from harness.util import wait_until

REPO = "library/floating"
HOST = "harbor.example.com"
REGEX = "^([0-9]+)\\.([0-9]+)\\.([0-9]+)$"


def rule(**kw):
    r = {"name": "floating", "repositories": [REPO], "source": "{repo}:{version}-{arch}",
         "target": "{repo}:{version}", "architectures": ["amd64", "arm64"],
         "version_regex": REGEX, "version_groups": ["major", "minor"],
         "extra_tags": ["latest", "{major}.{minor}"]}
    r.update(kw)
    return r


def run_cli(*args, timeout=60):
    return subprocess.run([archmerge_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def write_config(factory, text, name):
    """Config + secret files for CLI runs, without starting `serve`."""
    factory._write_secret(factory.webhook_secret_file, factory.webhook_auth)
    factory._write_secret(factory.password_file, factory.registry_password)
    path = os.path.join(factory.directory, name)
    factory._write_secret(path, text.rstrip("\n"))
    return path


def digest(client, tag):
    head = client.head_manifest(REPO, tag)
    return head["digest"] if head is not None else None


def release(am, client, version, salt):
    """Push both architectures of version with webhooks; wait until its target is (re)published."""
    before = digest(client, version)
    runs = len(re.findall(rf"{re.escape(REPO)}:{re.escape(version)} .*result=published", am.log_text()))
    # Both images first, then the webhooks: no run sees one new and one old child (a rebuild).
    pushed = {arch: client.push_image(REPO, f"{version}-{arch}", arch=arch, salt=f"{version}/{salt}")
              for arch in ("amd64", "arm64")}
    for arch, image in pushed.items():
        payload, ct = webhook.push_event(REPO, image.digest, f"{version}-{arch}")
        status, body = am.send(payload, ct)
        assert status == 202, body
    wait_until(lambda: digest(client, version) not in (None, before), 30,
               message=f"{REPO}:{version} was not published")
    # The floating tags are written before the target; the run's log line closes it.
    wait_until(lambda: len(re.findall(rf"{re.escape(REPO)}:{re.escape(version)} .*result=published",
                                      am.log_text())) > runs, 30, message=f"no published line for {version}")


def floating(client, *tags):
    """Which published version each floating tag names (None: missing, '?': no target has its digest)."""
    targets = {}
    for t in client.list_tags(REPO):
        if re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", t):
            targets.setdefault(digest(client, t), t)
    return {t: (targets.get(digest(client, t), "?") if digest(client, t) else None) for t in tags}


def test_floating_tags_follow_the_highest_version(env, admin_client, archmerge):
    am = archmerge(archmerge.config(rules=[rule()]))
    c = admin_client

    release(am, c, "3.8.4", "a")
    assert floating(c, "latest", "3.8") == {"latest": "3.8.4", "3.8": "3.8.4"}
    release(am, c, "3.8.5", "a")
    assert floating(c, "latest", "3.8") == {"latest": "3.8.5", "3.8": "3.8.5"}
    release(am, c, "3.9.0", "a")
    assert floating(c, "latest", "3.8", "3.9") == {"latest": "3.9.0", "3.8": "3.8.5", "3.9": "3.9.0"}

    # The security rebuild of 3.8.4 is republished; latest and 3.8 stay where they are.
    old = digest(c, "3.8.4")
    release(am, c, "3.8.4", "rebuild")
    assert digest(c, "3.8.4") != old
    assert floating(c, "latest", "3.8", "3.9") == {"latest": "3.9.0", "3.8": "3.8.5", "3.9": "3.9.0"}
    assert re.search(r"library/floating:3\.8\.4 .*result=published .*latest stays at 3\.9\.0; "
                     r"3\.8 stays at 3\.8\.5", am.log_text())

    # A backport published late moves its own minor line only.
    release(am, c, "3.7.1", "a")
    assert floating(c, "latest", "3.7", "3.8", "3.9") == {"latest": "3.9.0", "3.7": "3.7.1", "3.8": "3.8.5",
                                                         "3.9": "3.9.0"}
    release(am, c, "3.9.1", "a")
    assert floating(c, "latest", "3.8", "3.9") == {"latest": "3.9.1", "3.8": "3.8.5", "3.9": "3.9.1"}
    # 3.10.0 sorts below 3.9.1 as text; as numbers it is the highest.
    release(am, c, "3.10.0", "a")
    assert floating(c, "latest", "3.7", "3.8", "3.9", "3.10") == {
        "latest": "3.10.0", "3.7": "3.7.1", "3.8": "3.8.5", "3.9": "3.9.1", "3.10": "3.10.0"}
    am.stop()

    # Reconcile re-creates missing floating tags for the highest version, in whatever order it
    # meets the groups (the tag list's: 3.10.0, 3.7.1, 3.8.4, 3.8.5, ... so 3.8.4 comes before 3.8.5).
    for tag in ("latest", "3.8"):
        shutil.rmtree(os.path.join(env.registry.storage, "docker", "registry", "v2", "repositories", REPO,
                                   "_manifests", "tags", tag))
    assert floating(c, "latest", "3.8") == {"latest": None, "3.8": None}
    cfg = write_config(archmerge, archmerge.config(rules=[rule()], extra={"reconcile": {"repositories": [REPO]}}),
                       "reconcile.conf")
    p = run_cli("reconcile", "-c", cfg)
    assert p.returncode == 0, p.stderr
    assert floating(c, "latest", "3.7", "3.8", "3.9", "3.10") == {
        "latest": "3.10.0", "3.7": "3.7.1", "3.8": "3.8.5", "3.9": "3.9.1", "3.10": "3.10.0"}, p.stderr
    assert re.search(rf"group={HOST}/{REPO}:3\.8\.4 .*result=unchanged .*3\.8 stays at 3\.8\.5", p.stderr), p.stderr


def test_check_config_reports_floating_tags_without_an_order(env, archmerge):
    unsaid = rule(name="unsaid", version_regex=None, version_groups=None, extra_tags=["latest"])
    unsaid = {k: v for k, v in unsaid.items() if v is not None}
    cfg = write_config(archmerge, archmerge.config(rules=[unsaid]), "unsaid.conf")
    p = run_cli("check-config", "-c", cfg)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert re.search(rf'^{re.escape(cfg)}:\d+: rules\[0\]: extra tag "latest" is written by every version, .*'
                     r'version_order = "push"', p.stderr, re.M), p.stderr
    assert "configuration loads, with the warnings above" in p.stdout

    # serve still loads it, and says so in its log.
    am = archmerge(archmerge.config(rules=[unsaid]))
    wait_until(lambda: re.search(r'level=warn config detail=".*extra tag \\"latest\\" is written by every version',
                                 am.log_text()), 10, message="no config warning logged")
    am.stop()

    for said in ({"version_order": "push"}, {"version_order": "semver"}):
        cfg = write_config(archmerge, archmerge.config(rules=[dict(unsaid, **said)]), "said.conf")
        p = run_cli("check-config", "-c", cfg)
        assert p.returncode == 0 and p.stdout.splitlines()[0] == "configuration OK", (p.stdout, p.stderr)
