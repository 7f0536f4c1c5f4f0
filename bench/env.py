"""The bench's world: one docker-registry per mode on loopback, `plain`
(HTTP, no auth) and `tls` (TLS + Harbor-style bearer tokens), and one
archmerge configured for both (a registry host per mode). Built from the
integration-test harness (tests/integration/harness)."""

import os
import re
import secrets
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from harness import pki as pki_mod, webhook  # noqa: E402
from harness.archmerge import ArchmergeFactory  # noqa: E402
from harness.images import RegistryClient, RegistryError  # noqa: E402
from harness.registry import Registry  # noqa: E402
from harness import tokensrv  # noqa: E402
from harness.tokensrv import TokenService  # noqa: E402


def _post_not_found(self):
    """containerd's resolver (manifest-tool) first POSTs an OAuth2 password grant and
    falls back to GET on 404 (distribution's oauth doc); the harness answers 405
    without reading the body. Bench only: read the body, answer 404."""
    n = int(self.headers.get("Content-Length") or 0)
    if n:
        self.rfile.read(n)
    self._reply(404, {"errors": [{"code": "NOT_FOUND", "message": "use GET"}]})


tokensrv._TokenHandler.do_POST = _post_not_found
from harness.util import wait_until  # noqa: E402

ROBOT = "robot$library+archmerge"
UA = "archmerge/"
MODES = ("plain", "tls")
HOSTS = {"plain": "plain.example.com", "tls": "harbor.example.com"}

# archmerge's log: "2026-12-02T01:02:03.456Z ... group=HOST/REPO:TAG ... result=published"
_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z")


def log_time(line):
    """Wall-clock seconds of an archmerge log line (ms resolution), or None."""
    m = _TS.match(line)
    if not m:
        return None
    import calendar
    base, ms = m.group(1).split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(ms) / 1000.0


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class LogTail:
    """Follows archmerge's log file from its current end."""

    def __init__(self, path):
        self.f = open(path, errors="replace")
        self.f.seek(0, 2)
        self.buf = ""

    def lines(self):
        self.buf += self.f.read()
        *done, self.buf = self.buf.split("\n")
        return done

    def wait(self, pattern, timeout=20.0, step=0.004):
        """The line's own timestamp is the measurement: the poll step costs no precision,
        only CPU the measured process would compete with (so not too small)."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.lines():
                if rx.search(line):
                    return line
            time.sleep(step)
        raise TimeoutError(f"no log line /{pattern}/ in {timeout} s")

    def close(self):
        self.f.close()


class World:
    def __init__(self, work, workers=4, max_concurrent=4, replicas=1, single_writer=False):
        self.work = work
        self.workers, self.max_concurrent, self.replicas = workers, max_concurrent, replicas
        self.single_writer = single_writer and replicas <= 1
        # the product's default: the source re-check after each PUT (two HEADs); a declared single writer skips it
        self.recheck = not self.single_writer
        self.regs, self.clients = {}, {}

    def start(self):
        self.pki = pki_mod.create_pki(os.path.join(self.work, "pki"))
        signer = self.pki.issue("token-signer", server=False, key_kind="rsa")
        self.users = {ROBOT: secrets.token_urlsafe(18), "ci": secrets.token_urlsafe(18)}
        self.tokens = TokenService(tls_cert=self.pki.server.cert, tls_key=self.pki.server.key,
                                   signing_key=signer.key, signing_chain=[signer.cert], users=self.users,
                                   issuer="bench", service="harbor-registry")
        self.tokens.start()
        self.regs["tls"] = Registry(os.path.join(self.work, "registry-tls"), tls_cert=self.pki.server.cert,
                                    tls_key=self.pki.server.key, cafile=self.pki.ca_cert,
                                    token_realm=self.tokens.realm, token_service="harbor-registry",
                                    token_issuer="bench", token_rootcertbundle=signer.cert).start()
        self.regs["plain"] = Registry(os.path.join(self.work, "registry-plain")).start()
        self.clients["tls"] = RegistryClient(self.regs["tls"].url, "ci", self.users["ci"], self.pki.ca_cert)
        self.clients["plain"] = RegistryClient(self.regs["plain"].url)
        # The registry (TLS and plain) is what the hostile section's webhooks never reach.
        self.registry, self.ci = self.regs["tls"], self.clients["tls"]
        self.secret = "Bearer " + secrets.token_urlsafe(24)
        regs = [{"host": HOSTS["tls"], "url": self.regs["tls"].url, "ca_file": self.pki.ca_cert,
                 "username": ROBOT, "max_concurrent": self.max_concurrent}]
        self.factory = ArchmergeFactory(os.path.join(self.work, "archmerge"), cafile=self.pki.ca_cert,
                                        certificate=self.pki.server.cert, private_key=self.pki.server.key,
                                        registries=regs, webhook_auth=self.secret,
                                        registry_password=self.users[ROBOT])
        # the plain registry: no credentials at all (the factory would add a password file)
        self.factory.registries.append({"host": HOSTS["plain"], "url": self.regs["plain"].url,
                                        "max_concurrent": self.max_concurrent})
        return self

    def start_archmerge(self, debug=False, binary=None):
        """debug: log_level debug, whose `registry request` lines carry libcurl's timing breakdown;
        binary: another archmerge executable than $ARCHMERGE_BIN (bench/spaced.py's --compare-bin)."""
        extra = {"log_level": "debug"} if debug else None
        # The product's default configuration: the source re-check after the PUT (8 / 6 requests);
        # --single-writer measures an instance declared the only writer (6 / 4).
        server = ({"replicas": self.replicas} if self.replicas > 1 else
                  {"single_writer": True} if self.single_writer else {})
        am = self.factory(self.factory.config(workers=self.workers, extra=extra, server_extra=server),
                          binary=binary)
        time.sleep(0.3)
        return am

    def stop(self):
        if getattr(self, "factory", None) is not None:
            self.factory.stop_all()
        for r in self.regs.values():
            r.stop()
        if getattr(self, "tokens", None):
            self.tokens.stop()

    def event(self, mode, repo, digest, tag):
        return webhook.push_event(repo, digest, tag, host=HOSTS[mode])

    def exists(self, mode, repo, tag):
        try:
            return self.clients[mode].head_manifest(repo, tag) is not None
        except RegistryError as exc:
            if exc.status >= 500:
                return False
            raise

    def push_pairs(self, mode, repo, versions, salt, threads=4):
        """Both architectures' images for every version, pushed before any timing.
        Same salt -> same content (the warm runs reuse cold runs' children)."""
        out = {}
        lock = threading.Lock()
        todo = list(versions)

        def work():
            c = RegistryClient(self.regs[mode].url, *(("ci", self.users["ci"], self.pki.ca_cert)
                                                      if mode == "tls" else ()))
            while True:
                with lock:
                    if not todo:
                        return
                    v = todo.pop()
                s = salt(v) if callable(salt) else salt
                a = c.push_image(repo, f"{v}-amd64", arch="amd64", salt=s)
                b = c.push_image(repo, f"{v}-arm64", arch="arm64", salt=s)
                with lock:
                    out[v] = (a, b)
        ts = [threading.Thread(target=work) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if len(out) != len(versions):
            raise RuntimeError(f"pushed {len(out)} of {len(versions)} pairs")
        return out

    def requests_for(self, mode, repo, version, pair, ua=UA):
        """Registry requests (access log) one index cost: its source tags, its
        children's config blobs, its target tag."""
        tags = {f"/v2/{repo}/manifests/{version}", f"/v2/{repo}/manifests/{version}-amd64",
                f"/v2/{repo}/manifests/{version}-arm64"}
        tags |= {f"/v2/{repo}/blobs/{p.config_digest}" for p in pair}
        return [e for e in self.regs[mode].access_log(ua, pings=False) if e[1] in tags]


__all__ = ["World", "LogTail", "log_time", "rss_kib", "MODES", "HOSTS", "ROBOT", "UA", "wait_until",
           "webhook", "RegistryClient"]
