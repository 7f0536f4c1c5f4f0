"""The seed's workflow with a real Docker engine (issue 12, part 2).

Starts Debian's dockerd (vfs, no bridge, no iptables, own data/exec root and
socket under a temp dir; it starts its own containerd), trusts the test CA
through /etc/docker/certs.d/HOST:PORT/ca.crt (dockerd 20.10 has that path
built in; harness.tools.DockerCLI installs and removes it), logs in to the
token-auth registry, builds two FROM scratch images for linux/amd64 and
linux/arm64, pushes them, and lets the registry's notifications drive
archmerge. Then the engine pulls the index per platform.
Skipped with the reason when dockerd is missing or cannot start.
"""

import json
import os
import subprocess
import time

import pytest

from harness.engine import Engine, EngineUnavailable
from harness.tools import DockerCLI
from test_notifications import notifying_registry, use_registry, wait_index


@pytest.fixture
def engine():
    try:
        e = Engine().start()
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield e
    finally:
        e.stop()


def build(engine, workdir, arch, tag, env):
    ctx = os.path.join(workdir, "ctx-" + arch)
    os.makedirs(ctx, exist_ok=True)
    with open(os.path.join(ctx, "hello.txt"), "w") as f:
        f.write(f"hello from {arch}\n")
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM scratch\nCOPY hello.txt /\n")
    engine.docker("build", "--platform", f"linux/{arch}", "-t", tag, ctx, env=env)
    info = json.loads(engine.docker("image", "inspect", tag, env=env).stdout)[0]
    assert info["Architecture"] == arch and info["Os"] == "linux"
    return info["Id"]


def test_docker_engine_login_build_push_pull_by_platform(env, archmerge, engine, tmp_path):
    t0 = time.monotonic()
    reg = notifying_registry(env, str(tmp_path / "reg"), f"https://127.0.0.1:{archmerge.port}/hooks/harbor")
    use_registry(archmerge, reg)
    archmerge()
    os.makedirs(str(tmp_path / "cli"), exist_ok=True)
    cli = DockerCLI(str(tmp_path / "cli"), reg.host, env.ca_file, env.admin_user, env.admin_password)
    try:
        with reg:
            denv = cli.env
            engine.docker("login", reg.host, "-u", env.admin_user, "--password-stdin",
                          input=env.admin_password, env=denv)
            base = f"{reg.host}/library/app"
            ids = {a: build(engine, str(tmp_path), a, f"{base}:3.8.5-{a}", denv) for a in ("amd64", "arm64")}
            assert ids["amd64"] != ids["arm64"]
            for a in ids:
                engine.docker("push", f"{base}:3.8.5-{a}", env=denv)
            from harness.images import RegistryClient
            c = RegistryClient(reg.url, env.admin_user, env.admin_password, env.ca_file)
            wait_index(c, "library/app", "3.8.5", timeout=60)
            engine.docker("rmi", "-f", ids["amd64"], ids["arm64"], env=denv)
            for a in ("arm64", "amd64"):
                engine.docker("pull", "--platform", f"linux/{a}", f"{base}:3.8.5", env=denv)
                got = json.loads(engine.docker("image", "inspect", f"{base}:3.8.5", env=denv).stdout)[0]
                assert got["Id"] == ids[a], f"{a}: pulled {got['Id']}, built {ids[a]}"
                engine.docker("rmi", "-f", f"{base}:3.8.5", env=denv)
            r = subprocess.run(["docker", "manifest", "inspect", f"{base}:3.8.5"], env=denv,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            plats = sorted(m["platform"]["architecture"] for m in json.loads(r.stdout)["manifests"])
            assert plats == ["amd64", "arm64"]
    finally:
        cli.cleanup()
    print(f"engine: {engine.version()} "
          f"run {time.monotonic() - t0:.1f}s")
