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
import shutil
import subprocess
import tempfile
import time

import pytest

from harness.tools import DockerCLI
from harness.util import wait_until
from test_notifications import notifying_registry, use_registry, wait_index

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"


class Engine:
    def __init__(self):
        # Short path: the socket must fit sun_path (108 bytes).
        self.root = tempfile.mkdtemp(prefix="am-dockerd-", dir="/tmp")
        self.sock = os.path.join(self.root, "docker.sock")
        self.log_path = os.path.join(self.root, "dockerd.log")
        self.proc = None

    def start(self, timeout=60):
        if not os.access(DOCKERD, os.X_OK):
            pytest.skip(f"dockerd not found at {DOCKERD} (Debian package docker.io)")
        argv = [DOCKERD, "--storage-driver", "vfs", "--bridge", "none", "--iptables=false",
                "--ip6tables=false", "--data-root", os.path.join(self.root, "data"),
                "--exec-root", os.path.join(self.root, "exec"), "--pidfile", os.path.join(self.root, "pid"),
                "-H", "unix://" + self.sock]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = open(self.log_path, errors="replace").read()[-1500:]
                self.stop()
                pytest.skip(f"dockerd cannot start here (exit {self.proc.returncode}): {tail}")
            if os.path.exists(self.sock) and self.docker("version", check=False).returncode == 0:
                return self
            time.sleep(0.3)
        self.stop()
        pytest.skip(f"dockerd did not answer within {timeout}s")

    def docker(self, *args, check=True, env=None, input=None):
        e = dict(env or os.environ, DOCKER_HOST="unix://" + self.sock, DOCKER_BUILDKIT="0")
        r = subprocess.run(["docker", *args], env=e, input=input, capture_output=True, text=True, timeout=180)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        # vfs layers and containerd state: remove the whole temp root.
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def engine():
    e = Engine().start()
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
    print(f"engine: {engine.docker('version', '--format', '{{.Server.Version}}').stdout.strip()} "
          f"run {time.monotonic() - t0:.1f}s")
