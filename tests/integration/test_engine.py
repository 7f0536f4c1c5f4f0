"""The seed's workflow with a real Docker engine (issue 12, part 2).

Starts Debian's dockerd (vfs, no bridge, no iptables, own data/exec root and
socket under a temp dir; it starts its own containerd) in a network namespace
the test makes, whose loopback also carries ENGINE_ADDR. The registry is
reached as ENGINE_ADDR:PORT, forwarded to the registry on the host's
127.0.0.1 (harness/netns.py): dockerd treats 127.0.0.0/8 as insecure and would
not check the certificate there, so only outside it does the test CA have to
come from /etc/docker/certs.d/HOST:PORT/ca.crt (dockerd 20.10 has that path
built in; harness.tools.DockerCLI installs and removes it). The test shows the
login failing without it, then logs in to the token-auth registry, builds two
FROM scratch images for linux/amd64 and linux/arm64, pushes them, and lets
the registry's notifications drive archmerge. Then the engine pulls the index
per platform. Skipped with the reason when dockerd is missing or cannot start.
"""

import json
import os
import time

import pytest

from harness.engine import Engine, EngineUnavailable
from harness.images import RegistryClient
from harness.netns import Forward
from harness.tools import DockerCLI
from test_notifications import notifying_registry, wait_index

# An address on the loopback of the engine's own network namespace (RFC 1918,
# never routed anywhere: that namespace has no other interface).
ENGINE_ADDR = "10.213.0.1"


@pytest.fixture
def engine():
    try:
        e = Engine(netns_address=ENGINE_ADDR).start()
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
    cert = env.pki.issue("engine-registry", ips=("127.0.0.1", ENGINE_ADDR))
    reg = notifying_registry(env, str(tmp_path / "reg"), f"https://127.0.0.1:{archmerge.port}/hooks/harbor",
                             cert=cert)
    name = f"{ENGINE_ADDR}:{reg.port}"       # what the engine, and so the notifications, call it
    # archmerge reads and writes through the host's loopback; the events name `name`.
    archmerge.registries = [dict(r, host=name, url=reg.url) for r in archmerge.registries]
    archmerge()
    # Into the engine's namespace: the registry under its name, and the token
    # service at the realm the registry announces (https://127.0.0.1:PORT/...).
    forwards = [Forward(listen_ns=engine.netns, listen_host=ENGINE_ADDR, listen_port=reg.port,
                        connect_ns=None, connect_port=reg.port),
                Forward(listen_ns=engine.netns, listen_port=env.tokens.port, connect_ns=None,
                        connect_port=env.tokens.port)]
    os.makedirs(str(tmp_path / "cli"), exist_ok=True)
    untrusted = DockerCLI(str(tmp_path / "cli"), name, None, test_netns=True)
    cli = None
    try:
        for f in forwards:
            f.start()
        with reg:
            # Without certs.d the engine refuses the test CA's certificate.
            r = engine.docker("login", name, "-u", env.admin_user, "--password-stdin",
                              input=env.admin_password, env=untrusted.env, check=False)
            assert r.returncode != 0 and "certificate signed by unknown authority" in r.stderr, r.stderr
            cli = DockerCLI(str(tmp_path / "cli"), name, env.ca_file, env.admin_user, env.admin_password,
                            test_netns=True)
            denv = cli.env
            engine.docker("login", name, "-u", env.admin_user, "--password-stdin",
                          input=env.admin_password, env=denv)
            base = f"{name}/library/app"
            ids = {a: build(engine, str(tmp_path), a, f"{base}:3.8.5-{a}", denv) for a in ("amd64", "arm64")}
            assert ids["amd64"] != ids["arm64"]
            for a in ids:
                engine.docker("push", f"{base}:3.8.5-{a}", env=denv)
            c = RegistryClient(reg.url, env.admin_user, env.admin_password, env.ca_file)
            wait_index(c, "library/app", "3.8.5", timeout=60)
            engine.docker("rmi", "-f", ids["amd64"], ids["arm64"], env=denv)
            for a in ("arm64", "amd64"):
                engine.docker("pull", "--platform", f"linux/{a}", f"{base}:3.8.5", env=denv)
                got = json.loads(engine.docker("image", "inspect", f"{base}:3.8.5", env=denv).stdout)[0]
                assert got["Id"] == ids[a], f"{a}: pulled {got['Id']}, built {ids[a]}"
                engine.docker("rmi", "-f", f"{base}:3.8.5", env=denv)
            # The CLI reads the registry itself: from inside the engine's namespace.
            r = engine.in_netns(["docker", "manifest", "inspect", f"{base}:3.8.5"], env=denv)
            assert r.returncode == 0, r.stderr
            plats = sorted(m["platform"]["architecture"] for m in json.loads(r.stdout)["manifests"])
            assert plats == ["amd64", "arm64"]
    finally:
        for f in forwards:
            f.stop()
        untrusted.cleanup()
        if cli is not None:
            cli.cleanup()
    print(f"engine: {engine.version()} in its own network namespace, registry {name}, "
          f"run {time.monotonic() - t0:.1f}s")
