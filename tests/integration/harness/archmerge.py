"""Render archmerge's libconfig file and run the archmerge binary.

make_config(...) renders exactly the keys the C side accepts:

    server = { listen; tls = { certificate; private_key; }; webhook_path;
               webhook_secret_file; workers; };
    registries = ( { host; url; ca_file; username; password_file; } );
    rules = ( { name; repositories = [..]; source; target; architectures = [..]; format; } );

ArchmergeFactory(...)(config_text) writes the config plus the secret files
(mode 0600), starts `ARCHMERGE_BIN serve -c FILE` (prefixed by the words of
$ARCHMERGE_WRAPPER when set, e.g. valgrind), waits for a TLS
handshake on the listen port and stops it (SIGTERM, then SIGKILL) later.
"""

import os
import re
import shlex
import signal
import subprocess
from typing import Dict, List, Optional, Sequence

from . import webhook
from .util import GiveUp, child_popen_kwargs, free_port, read_log, tls_handshake_ok, wait_log, wait_until

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEFAULT_BIN = os.path.join(REPO_ROOT, "archmerge")
FAKE_BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_archmerge.py")

DEFAULT_RULE = {
    "name": "per-arch tags",
    "repositories": ["library/*"],
    "source": "{repo}:{version}-{arch}",
    "target": "{repo}:{version}",
    "architectures": ["amd64", "arm64"],
    "format": "auto",
}


def archmerge_bin() -> str:
    """$ARCHMERGE_BIN (set by the Makefile), else <repo>/archmerge."""
    return os.environ.get("ARCHMERGE_BIN") or DEFAULT_BIN


def archmerge_wrapper() -> List[str]:
    """$ARCHMERGE_WRAPPER split into words (e.g. `make valgrind` sets a valgrind
    command line): `serve` runs under it. Empty when unset."""
    return shlex.split(os.environ.get("ARCHMERGE_WRAPPER", ""))


# A wrapped binary (valgrind) starts and stops many times slower.
WRAPPED_READY_TIMEOUT = 120.0
WRAPPED_STOP_TIMEOUT = 120.0
WRAPPED_SLOWDOWN = 6           # wait_log deadlines and send() timeouts under a wrapper


# ---------------------------------------------------------------- libconfig

def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _value(v, indent: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return _quote(v)
    if isinstance(v, dict):
        inner = indent + "  "
        body = "".join(f"{inner}{k} = {_value(x, inner)};\n" for k, x in v.items())
        return "{\n" + body + indent + "}"
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, dict) for x in v):      # list of groups: ( {..}, {..} )
            inner = indent + "  "
            return "(\n" + ",\n".join(inner + _value(x, inner) for x in v) + "\n" + indent + ")"
        return "[ " + ", ".join(_value(x, indent) for x in v) + " ]"  # array of scalars
    raise TypeError(f"cannot render {v!r} as libconfig")


def render_libconfig(settings: Dict[str, object]) -> str:
    """Top-level `name = value;` lines. Empty lists of groups render as `()`."""
    out = []
    for k, v in settings.items():
        out.append(f"{k} = {'()' if isinstance(v, (list, tuple)) and not v else _value(v, '')};")
    return "\n".join(out) + "\n"


def make_config(*, port: int, certificate: str, private_key: str, webhook_secret_file: str,
                registries: Sequence[dict], rules: Sequence[dict] = (DEFAULT_RULE,),
                webhook_path: str = "/hooks/harbor", workers: int = 2, state_dir: Optional[str] = None,
                server_extra: Optional[dict] = None, extra: Optional[dict] = None) -> str:
    """The archmerge config text. `registries` entries: host, url, ca_file,
    username, password_file. Extra keys (server_extra / extra top-level) let
    tests add options the C side may grow later."""
    server = {
        "listen": f"127.0.0.1:{port}",
        "tls": {"certificate": certificate, "private_key": private_key},
        "webhook_path": webhook_path,
        "webhook_secret_file": webhook_secret_file,
        "workers": workers,
    }
    server.update(server_extra or {})
    settings = {"server": server, "registries": list(registries), "rules": list(rules)}
    if state_dir is not None:
        settings["state_dir"] = state_dir
    settings.update(extra or {})
    return render_libconfig(settings)


# ---------------------------------------------------------------- process

class ArchmergeProcess:
    """A running archmerge: url, port, webhook_url, log_path, config_path."""

    def __init__(self, argv: List[str], config_path: str, log_path: str, port: int, webhook_path: str,
                 cafile: str, webhook_auth: Optional[str]):
        self.argv, self.config_path, self.log_path = argv, config_path, log_path
        self.port = port
        self.url = f"https://127.0.0.1:{port}"
        self.webhook_url = self.url + webhook_path
        self.cafile = cafile
        self.webhook_auth = webhook_auth
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     **child_popen_kwargs())

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> Optional[int]:
        return self.proc.poll()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 10.0):
        # A probe gives its handshake time to finish: one it abandons is logged
        # by the service ("sslize error"), and such lines share the refusal
        # lines' budget (5 per 10 s). Under valgrind the first handshakes take
        # seconds: 0.5 s probes used that budget up before the test began, and
        # test_hostile's 408 and 413 lines never appeared.
        probe = min(timeout, 30.0 if getattr(self, "wrapped", False) else 5.0)

        def ready():
            if self.proc.poll() is not None:
                raise GiveUp(f"archmerge exited with {self.proc.returncode} before listening")
            return tls_handshake_ok("127.0.0.1", self.port, self.cafile, timeout=probe)
        try:
            wait_until(ready, timeout, 0.05, message=f"archmerge did not accept TLS on {self.url}")
        except (GiveUp, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n--- archmerge log ({self.log_path}) ---\n{self.log_text()}") from None
        return self

    def stop(self, timeout: float = 5.0) -> Optional[int]:
        """SIGTERM, wait up to `timeout`, then SIGKILL the process group."""
        if getattr(self, "wrapped", False):
            timeout = max(timeout, WRAPPED_STOP_TIMEOUT)
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)   # also any children it left behind
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(5)
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode

    def log_text(self) -> str:
        return read_log(self.log_path)

    def wait_log(self, pattern, count: int = 1, timeout: float = 20.0) -> str:
        """The log once `pattern` (substring or compiled regex) occurs `count`
        times (util.wait_log); the deadline is longer under a wrapper."""
        if getattr(self, "wrapped", False):
            timeout *= WRAPPED_SLOWDOWN
        return wait_log(self.log_text, pattern, count, timeout)

    def send(self, payload, content_type: str = webhook.CT_DEFAULT, auth_header: Optional[str] = "default", **kw):
        """webhook.send to this instance; auth defaults to the configured secret."""
        auth = self.webhook_auth if auth_header == "default" else auth_header
        if getattr(self, "wrapped", False):           # valgrind: a large body takes seconds
            kw.setdefault("timeout", 5.0 * WRAPPED_SLOWDOWN)
        return webhook.send(self.webhook_url, payload, content_type, auth, self.cafile, **kw)


class ArchmergeFactory:
    """Callable fixture object: factory(config_text) -> ArchmergeProcess.

    Secret files live at fixed paths in `directory` so that config() can
    name them before they are written:
      webhook_secret_file -> <dir>/webhook.secret  (whole Authorization value)
      password_file       -> <dir>/registry.password
    """

    def __init__(self, directory: str, *, cafile: str, certificate: str, private_key: str,
                 registries: Sequence[dict], webhook_auth: str, registry_password: str,
                 binary: Optional[str] = None):
        self.directory = directory
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.cafile, self.certificate, self.private_key = cafile, certificate, private_key
        self.webhook_auth = webhook_auth
        self.registry_password = registry_password
        self.webhook_secret_file = os.path.join(directory, "webhook.secret")
        self.password_file = os.path.join(directory, "registry.password")
        self.state_dir = os.path.join(directory, "state")
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        self.registries = [dict(r, password_file=r.get("password_file", self.password_file)) for r in registries]
        self.binary = binary
        self.port = free_port()
        self.instances: List[ArchmergeProcess] = []

    def config(self, **kw) -> str:
        """make_config with this test's port, cert, secret files and registries;
        any make_config argument can be overridden."""
        args = dict(port=self.port, certificate=self.certificate, private_key=self.private_key,
                    webhook_secret_file=self.webhook_secret_file, registries=self.registries,
                    state_dir=self.state_dir)
        args.update(kw)
        # The status surface is private by default (issue 23): the suite reads
        # /status and /ui without a secret, so it opts in, as an operator would.
        # Tests of the default pass server_extra={"status_public": False}.
        args["server_extra"] = {"status_public": True, **(args.get("server_extra") or {})}
        return make_config(**args)

    @staticmethod
    def _write_secret(path: str, text: str):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        os.chmod(path, 0o600)

    def __call__(self, config_text: Optional[str] = None, *, webhook_auth: Optional[str] = None,
                 registry_password: Optional[str] = None, binary: Optional[str] = None,
                 wait: bool = True, timeout: float = 10.0) -> ArchmergeProcess:
        """Write config + secrets (0600), start `BIN serve -c FILE`, wait for TLS."""
        config_text = config_text if config_text is not None else self.config()
        binary = binary or self.binary or archmerge_bin()
        if not os.access(binary, os.X_OK):
            raise FileNotFoundError(f"archmerge binary {binary} not found or not executable "
                                    f"(build it, or set ARCHMERGE_BIN)")
        m = re.search(r'listen\s*=\s*"127\.0\.0\.1:(\d+)"', config_text)
        if not m:
            raise ValueError('config must listen on "127.0.0.1:PORT"')
        webhook_auth = self.webhook_auth if webhook_auth is None else webhook_auth
        self._write_secret(self.webhook_secret_file, webhook_auth)
        self._write_secret(self.password_file, self.registry_password if registry_password is None
                           else registry_password)
        n = len(self.instances) + 1
        config_path = os.path.join(self.directory, f"archmerge-{n}.conf")
        self._write_secret(config_path, config_text.rstrip("\n"))
        path_m = re.search(r'webhook_path\s*=\s*"([^"]*)"', config_text)
        wrapper = archmerge_wrapper()
        if wrapper:
            timeout = max(timeout, WRAPPED_READY_TIMEOUT)
        proc = ArchmergeProcess(wrapper + [binary, "serve", "-c", config_path], config_path,
                                os.path.join(self.directory, f"archmerge-{n}.log"), int(m.group(1)),
                                path_m.group(1) if path_m else "/hooks/harbor", self.cafile, webhook_auth)
        proc.wrapped = bool(wrapper)
        self.instances.append(proc)
        if wait:
            try:
                proc.wait_ready(timeout)
            except BaseException:
                proc.expect_clean_exit = False   # the failure is reported here already
                raise
        return proc

    def stop_all(self):
        for p in self.instances:
            p.stop()

    def logs(self) -> List[tuple]:
        return [(p.log_path, p.log_text()) for p in self.instances]
