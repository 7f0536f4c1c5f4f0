"""Run the real CNCF distribution registry (/usr/bin/docker-registry, 2.8)
on a free 127.0.0.1 port, with TLS and Harbor-style token auth, or plain
HTTP without auth (demo mode)."""

import json
import os
import re
import signal
import ssl
import subprocess
import urllib.error
import urllib.request
from typing import List, Optional, Tuple

from .util import GiveUp, child_popen_kwargs, client_tls_context, free_port, read_log, wait_until

REGISTRY_BIN = os.environ.get("REGISTRY_BIN", "/usr/bin/docker-registry")


class Registry:
    def __init__(self, workdir: str, *, tls_cert: Optional[str] = None, tls_key: Optional[str] = None,
                 cafile: Optional[str] = None, token_realm: Optional[str] = None,
                 token_service: str = "harbor-registry", token_issuer: str = "harbor-token-issuer",
                 token_rootcertbundle: Optional[str] = None, port: Optional[int] = None,
                 binary: str = REGISTRY_BIN):
        """TLS when tls_cert/tls_key are given; token auth when token_realm is given.
        `cafile` is what clients (and the readiness probe) trust."""
        self.workdir = workdir
        self.tls = bool(tls_cert)
        self.auth = bool(token_realm)
        self.cafile = cafile
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if self.tls else 'http'}://{self.host}"
        self.storage = os.path.join(workdir, "storage")
        self.config_path = os.path.join(workdir, "config.yml")
        self.log_path = os.path.join(workdir, "registry.log")
        self.binary = binary
        self.proc: Optional[subprocess.Popen] = None
        self.extra_env: dict = {}   # e.g. SSL_CERT_FILE for notifications over HTTPS
        self._log = None

        cfg = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": self.storage},
                        "delete": {"enabled": True},
                        "cache": {"blobdescriptor": "inmemory"},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": {"addr": self.host, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if self.tls:
            cfg["http"]["tls"] = {"certificate": tls_cert, "key": tls_key}
        if self.auth:
            cfg["auth"] = {"token": {"realm": token_realm, "service": token_service,
                                     "issuer": token_issuer, "rootcertbundle": token_rootcertbundle}}
        self.config = cfg

    def start(self, timeout: float = 15.0):
        os.makedirs(self.storage, exist_ok=True)
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)  # JSON is valid YAML
        self._log = open(self.log_path, "ab")
        # Own session/process group so teardown can always kill it.
        self.proc = subprocess.Popen([self.binary, "serve", self.config_path], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **self.extra_env), **child_popen_kwargs())
        try:
            wait_until(self._ready, timeout, 0.05, message=f"registry not ready on {self.url}")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise GiveUp(f"registry exited with {self.proc.returncode}; log:\n{self.log_text()}")
        req = urllib.request.Request(self.url + "/v2/")
        ctx = client_tls_context(self.cafile) if self.tls else None
        try:
            with urllib.request.urlopen(req, timeout=1, context=ctx) as r:
                return (not self.auth) and r.status == 200
        except urllib.error.HTTPError as e:
            return self.auth and e.code == 401
        except (OSError, ssl.SSLError):
            return False

    def stop(self, timeout: float = 10.0):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        if self._log:
            self._log.close()
            self._log = None

    _ACCESS = re.compile(r'^\S+ - \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) \S+ "[^"]*" "([^"]*)"')

    def access_log(self, user_agent: Optional[str] = None, pings: bool = True) -> List[Tuple[str, str, int]]:
        """(method, path, status) per request, from the registry's access log,
        optionally only for one User-Agent substring (e.g. archmerge's).
        pings=False leaves out bare GET /v2/ (archmerge's background check pings
        every few seconds, whatever a test does)."""
        out = []
        for line in self.log_text().splitlines():
            m = self._ACCESS.match(line)
            if m and not pings and m.group(1) == "GET" and m.group(2) == "/v2/":
                continue
            if m and (user_agent is None or user_agent in m.group(4)):
                out.append((m.group(1), m.group(2), int(m.group(3))))
        return out

    def log_text(self) -> str:
        return read_log(self.log_path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
