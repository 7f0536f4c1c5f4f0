"""deploy/compose.yaml for real (issue 12, part 3).

Debian's docker-compose (1.29) runs the user-facing deploy/compose.yaml, plus
a small override, against a private dockerd (harness/engine.py) holding the
image `make image` built (buildah, pushed to a docker-archive, `docker load`).
A real docker-registry with TLS and token auth stands in Harbor's place as a
host process on 127.0.0.1. The configuration directory is made the way
docs/deployment.md says: deploy/archmerge.minimal.conf, deploy/make-secrets.sh
for the secrets, a server certificate from the test CA in config/tls/, the
registry's CA as ./harbor-ca.crt, `chown -R 10001:10001 config`.

The engine has no default bridge (--bridge none), and docker-compose 1.29
cannot put a service that names `networks` on the host network (it gives
every network endpoint an alias, which the host network refuses). So the test
makes Harbor's network itself, `harbor_harbor`, as an internal bridge (no
route anywhere), the way Harbor's installer leaves it, and compose.yaml joins
it unchanged. Nothing is sent over that bridge: harness/netns.py forwards
127.0.0.1:PORT in the container's network namespace to the same port on the
host's loopback (registry, token service) and a host loopback port to
127.0.0.1:8443 in the container (webhooks), so all traffic stays on loopback.
archmerge listens on 0.0.0.0:8443 inside its namespace, as the minimal
configuration says, and the file's health check asks 127.0.0.1:8443 there.
The override only shortens the health check's interval (1 s, not 30 s).

Checked: the container runs as the file says (uid 10001, read-only root, no
capabilities) and becomes healthy through its HEALTHCHECK; Harbor-shaped
webhooks get the index published (read back with the harness client and
skopeo: both children, their platforms); a group accepted while the registry
is down stays in the journal across `docker-compose down` (exit 0, container
exit 0, "shutdown complete" logged, journal in the named volume) and is
published on `up` with the registry back, replayed, with no webhook sent again
(reconcile is off in this configuration: only the journal can bring it); then a
second registry's own notifications (a second `registries` entry, matched by
its address) get another index published by the same container.

Slow (about 25 s, plus the image build): only with ARCHMERGE_VERIFY_COMPOSE=1,
which `make verify-compose` sets.
"""

import json
import os
import re
import shutil
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from conftest import TOKEN_ISSUER, TOKEN_SERVICE
from harness import webhook
from harness.archmerge import REPO_ROOT
from harness.engine import Engine, EngineUnavailable
from harness.images import RegistryClient
from harness.registry import Registry
from harness.netns import Forward
from harness.tools import Skopeo
from harness.util import free_port, wait_until
from test_notifications import notifying_registry

pytestmark = pytest.mark.skipif(os.environ.get("ARCHMERGE_VERIFY_COMPOSE") != "1",
                                reason="slow: run by `make verify-compose` (ARCHMERGE_VERIFY_COMPOSE=1)")

DEPLOY = os.path.join(REPO_ROOT, "deploy")
IMAGE = os.environ.get("ARCHMERGE_IMAGE", "localhost/archmerge:latest")
BUILDAH = ["buildah", "--storage-driver", "vfs"]
PROJECT = "archmerge-verify"
CONTAINER = "archmerge"               # container_name in compose.yaml
NETWORK = "harbor_harbor"             # compose.yaml's external network
REPO = "library/app"

OVERRIDE = """\
# verify-compose only: the health check every second instead of every 30 s.
services:
  archmerge:
    healthcheck:
      interval: 1s
      start_period: 5s
"""


class Compose:
    """docker-compose -p PROJECT --project-directory DIR -f compose.yaml -f override ARGS."""

    def __init__(self, engine: Engine, project_dir: str):
        self.engine, self.dir = engine, project_dir
        self.override = os.path.join(project_dir, "test-override.yaml")
        with open(self.override, "w") as f:
            f.write(OVERRIDE)

    def __call__(self, *args, check=True, timeout=300):
        argv = ["docker-compose", "--project-name", PROJECT, "--project-directory", self.dir,
                "-f", os.path.join(DEPLOY, "compose.yaml"), "-f", self.override, *args]
        env = dict(self.engine.env, ARCHMERGE_IMAGE=IMAGE)
        env.pop("HARBOR_CA_FILE", None)       # the documented default, ./harbor-ca.crt
        t0 = time.monotonic()
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        r.seconds = time.monotonic() - t0
        if check:
            assert r.returncode == 0, f"{' '.join(argv)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r


def load_image(engine: Engine, workdir: str) -> float:
    """buildah's image (from `make image`) into the test engine; seconds taken."""
    t0 = time.monotonic()
    if subprocess.run(BUILDAH + ["inspect", "--type", "image", IMAGE], capture_output=True).returncode != 0:
        pytest.fail(f"no image {IMAGE} in buildah's storage: run `make image` first (make verify-compose does)")
    archive = os.path.join(workdir, "archmerge-image.tar")
    r = subprocess.run(BUILDAH + ["push", "--quiet", IMAGE, f"docker-archive:{archive}:{IMAGE}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    engine.docker("load", "-i", archive, timeout=300)
    os.unlink(archive)
    cfg = json.loads(engine.docker("image", "inspect", IMAGE).stdout)[0]["Config"]
    assert cfg["User"] == "10001:10001" and cfg["Healthcheck"]["Test"][0] == "CMD-SHELL", cfg
    return time.monotonic() - t0


def make_config_dir(env, project_dir: str, registry: Registry, notifying: Registry) -> str:
    """config/ and harbor-ca.crt as docs/deployment.md describes; returns the webhook secret.
    `registry` is Harbor's place (webhooks name harbor.example.com); `notifying`, a
    second entry, is matched by its own address (its notifications' request.host)."""
    config = os.path.join(project_dir, "config")
    os.makedirs(os.path.join(config, "tls"))
    # A certificate from a CA the sender trusts instead of make-secrets.sh's self-signed one
    # (make-secrets.sh keeps an existing key); it names 127.0.0.1, where the test posts
    # (through a forward to the container's loopback).
    leaf = env.pki.issue("archmerge-compose", dns=("archmerge", "localhost"), ips=("127.0.0.1",))
    shutil.copy(leaf.cert, os.path.join(config, "tls", "server.crt"))
    shutil.copy(leaf.key, os.path.join(config, "tls", "server.key"))
    subprocess.run([os.path.join(DEPLOY, "make-secrets.sh"), config, "archmerge"], check=True,
                   env=dict(os.environ, ROBOT_SECRET=env.robot_password), capture_output=True)
    with open(os.path.join(DEPLOY, "archmerge.minimal.conf")) as f:
        conf = f.read()
    second = (f'  {{ host = "{notifying.host}"; url = "{notifying.url}"; ca_file = "/etc/ssl/harbor/ca.crt";\n'
              f'    username = "robot$library+archmerge"; password_file = "/etc/archmerge/robot-secret"; }}\n')
    for old, new in (('url = "https://harbor.example.com";',
                      f'url = "{registry.url}"; ca_file = "/etc/ssl/harbor/ca.crt";'),
                     ('password_file = "/etc/archmerge/robot-secret"; }\n);',
                      'password_file = "/etc/archmerge/robot-secret"; },\n' + second + ');')):
        assert old in conf, f"deploy/archmerge.minimal.conf no longer has {old!r}"
        conf = conf.replace(old, new)
    # No reconcile pass: after the restart only the journal can bring the index.
    conf += "reconcile = { on_start = false; interval_s = 0; };\n"
    with open(os.path.join(config, "archmerge.conf"), "w") as f:
        f.write(conf)
    shutil.copy(env.ca_file, os.path.join(project_dir, "harbor-ca.crt"))
    os.chmod(os.path.join(project_dir, "harbor-ca.crt"), 0o644)
    # The documented commands, word for word.
    subprocess.run(["sh", "-c", "chown -R 10001:10001 config && chmod 600 config/*-secret config/tls/server.key"],
                   cwd=project_dir, check=True)
    with open(os.path.join(config, "webhook-secret")) as f:
        return f.read().strip()


def logs(engine: Engine) -> str:
    r = engine.docker("logs", CONTAINER, check=False)
    return r.stdout + r.stderr


def wait_log(engine: Engine, pattern: str, timeout: float = 60) -> re.Match:
    rx = re.compile(pattern)
    return wait_until(lambda: rx.search(logs(engine)), timeout, 0.3,
                      message=f"container log never matched {pattern!r}:\n{logs(engine)[-3000:]}")


def wait_healthy(engine: Engine, timeout: float = 90) -> dict:
    def healthy():
        r = engine.docker("inspect", "--format", "{{json .State.Health}}", CONTAINER, check=False)
        h = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() not in ("", "null") else None
        return h if h and h["Status"] == "healthy" else None
    return wait_until(healthy, timeout, 0.3, message=f"{CONTAINER} never became healthy:\n{logs(engine)[-3000:]}")


def index_children(client: RegistryClient, tag: str):
    m = client.get_manifest(REPO, tag)
    if m is None or "manifests" not in m.json:
        return None
    return [(d["digest"], d["platform"]["architecture"], d["platform"]["os"]) for d in m.json["manifests"]]


def wait_index(client: RegistryClient, tag: str, expected, timeout: float = 60):
    return wait_until(lambda: index_children(client, tag) == expected, timeout, 0.3,
                      message=f"{REPO}:{tag} not published with {expected}: {index_children(client, tag)}")


def push_group(client: RegistryClient, version: str):
    amd = client.push_image(REPO, f"{version}-amd64", arch="amd64", salt=version)
    arm = client.push_image(REPO, f"{version}-arm64", arch="arm64", salt=version)
    return amd, arm, [(amd.digest, "amd64", "linux"), (arm.digest, "arm64", "linux")]


class Loopbacks:
    """The forwards between the host's loopback and the running container's:
    registry and token service ports into the container, a host port to its
    8443. Made again after every `up` (a new container, a new namespace)."""

    def __init__(self, engine: Engine, ports):
        self.engine, self.ports = engine, ports
        self.hook_port = free_port()
        self.url = f"https://127.0.0.1:{self.hook_port}"
        self.forwards = []

    def start(self):
        pid = engine_pid(self.engine)
        ns = f"/proc/{pid}/ns/net"
        self.forwards = [Forward(listen_ns=ns, listen_port=p, connect_ns=None, connect_port=p).start()
                         for p in self.ports]
        self.forwards.append(Forward(listen_ns=None, listen_port=self.hook_port, connect_ns=ns,
                                     connect_port=8443).start())

    def stop(self):
        for f in self.forwards:
            f.stop()
        self.forwards = []


def engine_pid(engine: Engine) -> int:
    pid = int(engine.docker("inspect", "--format", "{{.State.Pid}}", CONTAINER).stdout)
    assert pid > 0, "the container is not running"
    return pid


def hook(loop: Loopbacks, secret: str, ca_file: str, pushed) -> int:
    payload, ct = webhook.push_event(REPO, pushed.digest, pushed.ref)
    status, body = webhook.send(loop.url + "/hooks/harbor", payload, ct, secret, ca_file, timeout=10)
    assert status == 202, (status, body)      # 202: journaled
    return status


def down_cleanly(engine: Engine, compose: Compose, loop: Loopbacks, volume: str):
    """`docker-compose down`: exit 0, the container's exit code 0, its shutdown
    logged, and the volume (with the journal) still there. Returns (seconds, journal bytes)."""
    cid = engine.docker("inspect", "--format", "{{.Id}}", CONTAINER).stdout.strip()
    # The container is removed by down: follow its log until it stops.
    follow = subprocess.Popen(["docker", "logs", "--follow", CONTAINER], env=engine.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    since = int(time.time()) - 1
    try:
        r = compose("down")
        tail, _ = follow.communicate(timeout=60)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
        loop.stop()
    died = engine.docker("events", "--since", str(since), "--until", str(int(time.time()) + 1),
                         "--filter", f"container={cid}", "--filter", "event=die",
                         "--format", "{{json .Actor.Attributes}}").stdout.split()
    assert len(died) == 1, died
    assert json.loads(died[0])["exitCode"] == "0", died
    assert re.search(r"shutting down signal=15 ", tail), tail[-3000:]
    done = re.search(r"shutdown complete ms=(\d+)", tail)
    assert done, tail[-3000:]
    print(f"\ndown: container exit code 0, {done.group(0)}")
    assert engine.docker("ps", "-a", "-q", "--filter", f"name={CONTAINER}").stdout.strip() == ""
    mount = engine.docker("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip()
    return r.seconds, os.path.getsize(os.path.join(mount, "journal"))


def up(engine: Engine, compose: Compose, loop: Loopbacks):
    """`docker-compose up --detach`, the forwards, healthy; (up seconds, seconds until healthy)."""
    r = compose("up", "--detach", "--no-build")
    loop.start()
    t0 = time.monotonic()
    health = wait_healthy(engine)
    assert health["Log"] and health["Log"][-1]["ExitCode"] == 0, health
    return r.seconds, time.monotonic() - t0


def test_compose_file_for_real(env, tmp_path):
    t_start = time.monotonic()
    times = {}
    try:
        engine = Engine().start()
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    times["engine start"] = time.monotonic() - t_start
    reg = Registry(str(tmp_path / "reg"), tls_cert=env.pki.server.cert, tls_key=env.pki.server.key,
                   cafile=env.ca_file, token_realm=env.tokens.realm, token_service=TOKEN_SERVICE,
                   token_issuer=TOKEN_ISSUER,
                   token_rootcertbundle=env.registry.config["auth"]["token"]["rootcertbundle"])
    project = str(tmp_path / "project")
    os.makedirs(project)
    compose = None
    loop = Loopbacks(engine, [reg.port, urlsplit(env.tokens.realm).port])
    # The registry's own sender, posting to the container through the same forward.
    nreg = notifying_registry(env, str(tmp_path / "nreg"), loop.url + "/hooks/harbor")
    loop.ports.append(nreg.port)
    try:
        times["image load"] = load_image(engine, str(tmp_path))
        # Harbor's network, as its installer leaves it; internal: no route out of it.
        engine.docker("network", "create", "--internal", NETWORK)
        reg.start()
        secret = make_config_dir(env, project, reg, nreg)
        # The secret make-secrets.sh made, in the registry's notifications headers.
        nreg.config["notifications"]["endpoints"][0]["headers"] = {"Authorization": [secret]}
        nreg.start()
        compose = Compose(engine, project)
        client = RegistryClient(reg.url, env.admin_user, env.admin_password, env.ca_file)

        # ---- up: healthy through the HEALTHCHECK, and as locked down as the file says
        times["up"], times["healthy after up"] = up(engine, compose, loop)
        info = json.loads(engine.docker("inspect", CONTAINER).stdout)[0]
        hc = info["Config"]["Healthcheck"]
        assert any("/healthz" in w for w in hc["Test"]) and hc["Interval"] == 1_000_000_000, hc
        assert info["Config"]["User"] == "10001:10001"
        assert info["HostConfig"]["ReadonlyRootfs"] is True and info["HostConfig"]["CapDrop"] == ["ALL"]
        assert info["HostConfig"]["SecurityOpt"] == ["no-new-privileges:true"]
        assert list(info["NetworkSettings"]["Networks"]) == [NETWORK]
        volume = next(m["Name"] for m in info["Mounts"] if m["Destination"] == "/var/lib/archmerge")
        assert volume == f"{PROJECT}_archmerge-state"
        wait_log(engine, r"journal state_dir=/var/lib/archmerge pending=0")

        # ---- Harbor-shaped webhooks: the index is published
        amd, arm, kids = push_group(client, "3.8.5")
        t0 = time.monotonic()
        hook(loop, secret, env.ca_file, amd)
        hook(loop, secret, env.ca_file, arm)
        wait_index(client, "3.8.5", kids)
        times["index published"] = time.monotonic() - t0
        first = client.get_manifest(REPO, "3.8.5").digest
        raw = Skopeo(str(tmp_path), env.ca_file, env.admin_user, env.admin_password).inspect(
            f"{reg.host}/{REPO}:3.8.5")
        assert sorted((d["digest"], d["platform"]["architecture"]) for d in raw["manifests"]) == \
            sorted((d, a) for d, a, _ in kids)

        # ---- a group accepted while the registry is down, then down
        amd2, arm2, kids2 = push_group(client, "3.9.0")
        reg.stop()
        hook(loop, secret, env.ca_file, amd2)
        hook(loop, secret, env.ca_file, arm2)
        wait_log(engine, r"library/app:3\.9\.0 .*result=failed")
        times["down"], journal = down_cleanly(engine, compose, loop, volume)
        assert journal > 0

        # ---- up again with the registry back: replayed from the journal, no new webhook
        reg.start()
        up(engine, compose, loop)
        t0 = time.monotonic()
        wait_index(client, "3.9.0", kids2)
        times["replayed index published"] = time.monotonic() - t0
        log = logs(engine)
        assert re.search(r"journal state_dir=/var/lib/archmerge pending=1 ", log), log[-3000:]
        assert re.search(r"library/app:3\.9\.0 .*result=published", log), log[-3000:]
        assert "outcome=queued" not in log, log[-3000:]       # no webhook reached this container
        assert client.get_manifest(REPO, "3.8.5").digest == first

        # ---- the registry's own notifications (no test webhook): published too
        nclient = RegistryClient(nreg.url, env.admin_user, env.admin_password, env.ca_file)
        t0 = time.monotonic()
        amd3, arm3, kids3 = push_group(nclient, "4.0.0")
        wait_index(nclient, "4.0.0", kids3)
        times["index from notifications"] = time.monotonic() - t0
        assert re.search(r"outcome=queued type=notification", logs(engine)), logs(engine)[-3000:]
        times["final down"], _ = down_cleanly(engine, compose, loop, volume)
        versions = f"dockerd {engine.version()}, docker-compose {compose('version', '--short').stdout.strip()}"
    except BaseException:
        print(f"\n--- container log ---\n{logs(engine)[-6000:]}\n--- notifying registry log ---\n"
              f"{nreg.log_text()[-3000:]}")
        raise
    finally:
        loop.stop()
        if compose is not None:
            compose("down", "--volumes", check=False)
        reg.stop()
        nreg.stop()
        engine.stop()
    times["total"] = time.monotonic() - t_start
    print(f"\nverify-compose: {versions}, image {IMAGE}; journal {journal} bytes kept across down")
    print("verify-compose times: " + ", ".join(f"{k} {v:.1f}s" for k, v in times.items()))
