"""A private Docker engine for tests: Debian's dockerd (docker.io, 20.10)
with vfs storage, no default bridge, no iptables, its own data root, exec
root and socket under a temp dir (it starts its own containerd there).
Nothing of the host's engine configuration is used or changed.

    e = Engine().start()          # raises EngineUnavailable with the reason
    e.docker("version")           # the docker CLI against this engine
    e.env                         # environment with DOCKER_HOST for other clients
    e.stop()                      # stops dockerd and removes the temp root

As a script, `python3 engine.py check` starts and stops one engine and says
whether that works here (exit 0) or why not (exit 1): `make test` asks it
before `make verify-compose`.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Optional

try:
    from .util import read_log
except ImportError:          # run as a script: `python3 engine.py check`
    from util import read_log

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"


class EngineUnavailable(Exception):
    """dockerd is missing or cannot start on this machine (tests skip with this)."""


class Engine:
    def __init__(self, netns_address: Optional[str] = None):
        """netns_address: run dockerd in a network namespace of its own whose
        loopback also carries this address (e.g. 10.213.0.1): a registry reached
        there is outside 127.0.0.0/8, which dockerd treats as insecure (no
        certificate check), so the engine must trust it through certs.d.
        Nothing is reachable from that namespace but what the test forwards
        into it (harness/netns.py)."""
        self.netns_address = netns_address
        # Short path: the socket must fit sun_path (108 bytes).
        self.root = tempfile.mkdtemp(prefix="am-dockerd-", dir="/tmp")
        self.sock = os.path.join(self.root, "docker.sock")
        self.host = "unix://" + self.sock
        self.log_path = os.path.join(self.root, "dockerd.log")
        self.proc = None

    @property
    def env(self) -> dict:
        """os.environ with DOCKER_HOST pointing at this engine (for docker-compose, etc.)."""
        e = dict(os.environ, DOCKER_HOST=self.host, DOCKER_BUILDKIT="0")
        for var in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            e.pop(var, None)
        return e

    def start(self, timeout: float = 60.0) -> "Engine":
        if not os.access(DOCKERD, os.X_OK):
            self.stop()
            raise EngineUnavailable(f"dockerd not found at {DOCKERD} (Debian package docker.io)")
        argv = [DOCKERD, "--storage-driver", "vfs", "--bridge", "none", "--iptables=false",
                "--ip6tables=false", "--data-root", os.path.join(self.root, "data"),
                "--exec-root", os.path.join(self.root, "exec"), "--pidfile", os.path.join(self.root, "pid"),
                "-H", self.host]
        if self.netns_address is not None:
            setup = (f"ip link set lo up && ip addr add {self.netns_address}/32 dev lo && "
                     'exec "$0" "$@"')
            argv = ["unshare", "--net", "--", "sh", "-c", setup] + argv
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_text()[-1500:]
                rc = self.proc.returncode
                self.stop()
                raise EngineUnavailable(f"dockerd cannot start here (exit {rc}): {tail}")
            if os.path.exists(self.sock) and self.docker("version", check=False).returncode == 0:
                return self
            time.sleep(0.3)
        self.stop()
        raise EngineUnavailable(f"dockerd did not answer within {timeout}s")

    def docker(self, *args, check=True, env=None, input=None, timeout=180):
        """`docker ARGS` against this engine; env (e.g. a DOCKER_CONFIG) is the base environment."""
        e = dict(env or os.environ, DOCKER_HOST=self.host, DOCKER_BUILDKIT="0")
        r = subprocess.run(["docker", *args], env=e, input=input, capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    @property
    def netns(self) -> str:
        """The engine's network namespace (with netns_address)."""
        return f"/proc/{self.proc.pid}/ns/net"

    def in_netns(self, argv, env=None, timeout=120):
        """Run argv (a client such as `docker manifest inspect`, which talks to the
        registry itself) in the engine's network namespace."""
        return subprocess.run(["nsenter", f"--net={self.netns}", "--"] + list(argv), env=env,
                              capture_output=True, text=True, timeout=timeout)

    def version(self) -> str:
        return self.docker("version", "--format", "{{.Server.Version}}").stdout.strip()

    def log_text(self) -> str:
        return read_log(self.log_path)

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


def main(argv) -> int:
    if argv[1:] != ["check"]:
        print("usage: engine.py check", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    e = Engine()
    try:
        e.start()
        print(f"engine: dockerd {e.version()} starts here ({time.monotonic() - t0:.1f}s)")
        return 0
    except EngineUnavailable as exc:
        print(f"engine unavailable: {str(exc).splitlines()[0][:300]}")
        return 1
    finally:
        e.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
