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

The images carry LABELs (and the buildah ones manifest annotations too): the
index inherits the facts every child agrees on (issue 24, part 3).
"""

import json
import os
import shutil
import subprocess
import time

import pytest

from harness.engine import Engine, EngineUnavailable
from harness.images import RegistryClient
from harness.netns import Forward
from harness.tools import DockerCLI
from harness.archmerge import DEFAULT_RULE
from test_notifications import notifying_registry, use_registry, wait_index

# Labels both children carry, and one whose value differs per architecture.
SHARED_LABELS = {
    "org.opencontainers.image.title": "app",
    "org.opencontainers.image.description": "An app built twice",
    "org.opencontainers.image.licenses": "Apache-2.0",
    "org.opencontainers.image.url": "https://app.example",
    "org.opencontainers.image.source": "https://git.example/app",
}
INHERITING_RULE = dict(DEFAULT_RULE, inherit_annotations=True)


def facts_on(index_json):
    return {k: v for k, v in index_json.get("annotations", {}).items()
            if k.startswith("org.opencontainers.image.")}

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
        labels = dict(SHARED_LABELS, **{"org.opencontainers.image.vendor": f"builder-{arch}"})
        f.write("FROM scratch\nCOPY hello.txt /\n" +
                "".join(f"LABEL {k}={json.dumps(v)}\n" for k, v in labels.items()))
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
    archmerge(archmerge.config(rules=[INHERITING_RULE]))
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
            idx = wait_index(c, "library/app", "3.8.5", timeout=60)
            # The labels all children agree on are on the index; vendor differs, so it is not.
            assert facts_on(idx.json) == SHARED_LABELS, idx.json
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


BUILDAH = shutil.which("buildah")


def test_buildah_labels_and_annotations_reach_the_index(env, archmerge, skopeo, tmp_path):
    """buildah (vfs, no daemon) builds two FROM scratch images with labels and
    manifest annotations and pushes them; the registry's notifications drive
    archmerge. A manifest annotation wins over the same image's label."""
    if BUILDAH is None:
        pytest.skip("buildah is not installed")
    t0 = time.monotonic()
    reg = notifying_registry(env, str(tmp_path / "reg"), f"https://127.0.0.1:{archmerge.port}/hooks/harbor")
    use_registry(archmerge, reg)
    archmerge(archmerge.config(rules=[INHERITING_RULE]))
    root = tmp_path / "buildah"
    certs = root / "certs"
    os.makedirs(certs)
    shutil.copy(env.ca_file, certs / "ca.crt")
    (root / "hello.txt").write_text("hello\n")
    b = [BUILDAH, "--root", str(root / "storage"), "--runroot", str(root / "run"), "--storage-driver", "vfs"]
    # Isolated from the host's auth file and registries.conf drop-ins.
    benv = dict(os.environ, REGISTRY_AUTH_FILE=str(root / "auth.json"))
    (root / "auth.json").write_text('{"auths": {}}')

    def run(*argv):
        p = subprocess.run(b + list(argv), capture_output=True, text=True, env=benv, timeout=120)
        assert p.returncode == 0, f"buildah {' '.join(argv)}: {p.stderr}"
        return p.stdout.strip()

    annotated = {"org.opencontainers.image.description": "From the annotation",
                 "org.opencontainers.image.documentation": "https://docs.app.example"}
    try:
        with reg:
            for arch in ("amd64", "arm64"):
                ctr = run("from", "--arch", arch, "scratch")
                run("copy", ctr, str(root / "hello.txt"), "/")
                args = ["config", "--arch", arch, "--os", "linux"]
                for k, v in dict(SHARED_LABELS, **{"org.opencontainers.image.authors": f"team-{arch}"}).items():
                    args += ["--label", f"{k}={v}"]
                for k, v in annotated.items():
                    args += ["--annotation", f"{k}={v}"]
                run(*args, ctr)
                run("commit", "--format", "oci", ctr, f"localhost/app:{arch}")
                run("rm", ctr)
                run("push", "--cert-dir", str(certs), "--creds", f"{env.admin_user}:{env.admin_password}",
                    f"localhost/app:{arch}", f"docker://127.0.0.1:{reg.port}/library/app:2.0-{arch}")
            c = RegistryClient(reg.url, env.admin_user, env.admin_password, env.ca_file)
            wait_index(c, "library/app", "2.0", timeout=60)
            # Read back with skopeo, not our own client.
            idx = skopeo.inspect(f"127.0.0.1:{reg.port}/library/app:2.0")
            assert idx["mediaType"] == "application/vnd.oci.image.index.v1+json"
            want = dict(SHARED_LABELS, **annotated)   # authors differ: not inherited
            assert facts_on(idx) == want, idx
    finally:
        subprocess.run(b + ["rmi", "--all", "--force"], capture_output=True, env=benv, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
    print(f"buildah: two images built, pushed and merged in {time.monotonic() - t0:.1f}s")
