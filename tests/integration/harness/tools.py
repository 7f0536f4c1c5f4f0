"""Wrappers around the real client tools used to check results independently
of our own client: skopeo (verifies TLS against a --cert-dir holding ca.crt)
and the docker CLI's `docker manifest inspect` (no engine needed).

Caveat found by testing (docker CLI 28): for registries on 127.0.0.0/8 or
`localhost` the docker CLI treats the registry as "insecure" by default and
skips certificate verification entirely (a bogus CA in certs.d still
works). /etc/docker/certs.d/<host:port>/ca.crt is only consulted for secure
(non-loopback) registries. So docker checks content, not TLS; skopeo is the
tool that proves TLS verification. DockerCLI still installs the CA where
docker would look, and removes it again.
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
from typing import List, Optional

SKOPEO = os.environ.get("SKOPEO_BIN", "/usr/bin/skopeo")
DOCKER = os.environ.get("DOCKER_BIN", "/usr/local/bin/docker")
DOCKER_CERTS_D = "/etc/docker/certs.d"


class ToolError(RuntimeError):
    def __init__(self, argv, returncode, stdout, stderr):
        self.argv, self.returncode, self.stdout, self.stderr = argv, returncode, stdout, stderr
        super().__init__(f"{' '.join(argv)} -> exit {returncode}: {stderr.strip()[-800:]}")


def _run(argv: List[str], env=None, timeout: float = 30.0) -> str:
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        raise ToolError(argv, p.returncode, p.stdout, p.stderr)
    return p.stdout


def _loopback_ref(ref: str):
    assert ref.startswith(("127.", "localhost:")), f"loopback registries only: {ref}"


class Skopeo:
    """skopeo 1.9: the CA goes in as `--cert-dir DIR` with DIR/ca.crt."""

    def __init__(self, workdir: str, ca_file: Optional[str], username: Optional[str] = None,
                 password: Optional[str] = None):
        self.username, self.password = username, password
        self.cert_dir = None
        if ca_file:
            self.cert_dir = tempfile.mkdtemp(prefix="skopeo-certs-", dir=workdir)
            shutil.copy(ca_file, os.path.join(self.cert_dir, "ca.crt"))
        # Isolate from any auth file / registries.conf drop-ins of the host user.
        self.env = dict(os.environ, REGISTRY_AUTH_FILE=os.path.join(workdir, "skopeo-auth.json"))

    def _args(self, creds: Optional[str]) -> List[str]:
        args = ["--tls-verify=true"]
        if self.cert_dir:
            args += ["--cert-dir", self.cert_dir]
        if creds is None and self.username is not None:
            creds = f"{self.username}:{self.password}"
        args += ["--creds", creds] if creds else ["--no-creds"]
        return args

    def inspect(self, ref: str, raw: bool = True, config: bool = False, creds: Optional[str] = None):
        """`skopeo inspect [--raw] [--config] docker://REF` parsed as JSON.
        REF like 127.0.0.1:PORT/library/app:tag (or @sha256:...)."""
        _loopback_ref(ref)
        argv = [SKOPEO, "inspect"] + (["--raw"] if raw else []) + (["--config"] if config else [])
        argv += self._args(creds) + [f"docker://{ref}"]
        return json.loads(_run(argv, env=self.env))

    def copy(self, src: str, dst: str):
        """`skopeo copy docker://SRC docker://DST` on the same registry (manifest kept byte for byte)."""
        _loopback_ref(src)
        _loopback_ref(dst)
        creds = f"{self.username}:{self.password}" if self.username is not None else None
        argv = [SKOPEO, "copy", "--preserve-digests", "--src-tls-verify=true", "--dest-tls-verify=true"]
        if self.cert_dir:
            argv += ["--src-cert-dir", self.cert_dir, "--dest-cert-dir", self.cert_dir]
        argv += ["--src-creds", creds, "--dest-creds", creds] if creds else ["--src-no-creds", "--dest-no-creds"]
        _run(argv + [f"docker://{src}", f"docker://{dst}"], env=self.env, timeout=60)

    def inspect_raw_bytes(self, ref: str, creds: Optional[str] = None) -> bytes:
        """Exact manifest bytes (for digest comparisons)."""
        _loopback_ref(ref)
        argv = [SKOPEO, "inspect", "--raw"] + self._args(creds) + [f"docker://{ref}"]
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=self.env, timeout=30)
        if p.returncode != 0:
            raise ToolError(argv, p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))
        return p.stdout


class DockerCLI:
    """`docker manifest inspect` with its own DOCKER_CONFIG (auths in config.json)
    and the CA installed at /etc/docker/certs.d/<registry_host>/ca.crt.
    cleanup() restores certs.d to exactly what it was."""

    def __init__(self, workdir: str, registry_host: str, ca_file: Optional[str],
                 username: Optional[str] = None, password: Optional[str] = None, test_netns: bool = False):
        """test_netns: registry_host is an address in a network namespace the test made
        (harness/engine.py netns_address), not on the host's loopback."""
        if not test_netns:
            _loopback_ref(registry_host + ":")
        self.registry_host = registry_host
        self.config_dir = tempfile.mkdtemp(prefix="docker-config-", dir=workdir)
        auths = {}
        if username is not None:
            auths[registry_host] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
        with open(os.path.join(self.config_dir, "config.json"), "w") as f:
            json.dump({"auths": auths}, f)
        os.chmod(os.path.join(self.config_dir, "config.json"), 0o600)
        self.env = dict(os.environ, DOCKER_CONFIG=self.config_dir)
        for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            self.env.pop(var, None)
        self._created: List[str] = []      # dirs we created, deepest last
        self._saved_ca: Optional[bytes] = None   # previous ca.crt content, if any
        self._installed = False
        self.ca_path = os.path.join(DOCKER_CERTS_D, registry_host, "ca.crt")
        if ca_file:
            self._install_ca(ca_file)

    def _install_ca(self, ca_file: str):
        for d in (DOCKER_CERTS_D, os.path.dirname(self.ca_path)):
            try:                    # another test session (a pytest-xdist worker) may make it meanwhile
                os.makedirs(d)
                self._created.append(d)
            except FileExistsError:
                pass
        if os.path.exists(self.ca_path):
            with open(self.ca_path, "rb") as f:
                self._saved_ca = f.read()
        shutil.copy(ca_file, self.ca_path)
        self._installed = True

    def cleanup(self):
        if self._installed:
            if self._saved_ca is not None:
                with open(self.ca_path, "wb") as f:
                    f.write(self._saved_ca)
            elif os.path.exists(self.ca_path):
                os.unlink(self.ca_path)
            self._installed, self._saved_ca = False, None
        for d in reversed(self._created):
            try:
                os.rmdir(d)          # only if empty: never remove someone else's files
            except OSError:
                pass
        self._created = []

    def manifest_inspect(self, repo_ref: str, verbose: bool = False, insecure: bool = False):
        """`docker manifest inspect HOST/REPO_REF` parsed as JSON; repo_ref like library/app:tag."""
        argv = [DOCKER, "manifest", "inspect"] + (["--verbose"] if verbose else []) \
            + (["--insecure"] if insecure else []) + [f"{self.registry_host}/{repo_ref}"]
        return json.loads(_run(argv, env=self.env))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
