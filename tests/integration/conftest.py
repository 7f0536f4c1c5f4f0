"""Session fixtures for archmerge integration tests.

Brought up once per session, all on 127.0.0.1, all under one temp dir:
test PKI, Harbor-like token service, distribution registry (TLS + token
auth), skopeo and docker CLI wrappers. Per test: the `archmerge` factory.

    env                  -> Env (everything below, plus credentials)
    registry             -> harness.registry.Registry   (.url, .host, .port, .log_path)
    token_service        -> harness.tokensrv.TokenService (.request_count, .requests)
    admin_client         -> RegistryClient as "admin" (pushes test images)
    robot_client         -> RegistryClient as the archmerge robot
    skopeo               -> harness.tools.Skopeo (verifies TLS with the test CA)
    docker_cli           -> harness.tools.DockerCLI (CA in /etc/docker/certs.d, removed after)
    archmerge            -> ArchmergeFactory: archmerge(config_text=None) -> ArchmergeProcess
    archmerge_config     -> archmerge.config: (**make_config overrides) -> str
    wait_until(pred, timeout)  (importable from conftest or harness.util)
"""

import atexit
import os
import secrets
import signal
import sys
from dataclasses import dataclass

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import pki as pki_mod  # noqa: E402
from harness.archmerge import ArchmergeFactory, make_config  # noqa: E402,F401
from harness.images import RegistryClient  # noqa: E402
from harness.registry import Registry  # noqa: E402
from harness.tokensrv import TokenService  # noqa: E402
from harness.tools import DockerCLI, Skopeo  # noqa: E402
from harness.util import wait_until  # noqa: E402,F401

ROBOT_USER = "robot$library+archmerge"
ADMIN_USER = "admin"
READER_USER = "reader"            # valid credentials, pull only
HARBOR_HOST = "harbor.example.com"
TOKEN_ISSUER = "harbor-token-issuer"
TOKEN_SERVICE = "harbor-registry"


@dataclass
class Env:
    workdir: str
    pki: pki_mod.PKI
    tokens: TokenService
    registry: Registry
    robot_user: str
    robot_password: str
    admin_user: str
    admin_password: str
    reader_user: str
    reader_password: str
    webhook_auth: str             # whole Authorization header value archmerge expects
    harbor_host: str = HARBOR_HOST

    @property
    def ca_file(self) -> str:
        return self.pki.ca_cert

    def client(self, user: str = ADMIN_USER, password: str = None) -> RegistryClient:
        """A fresh RegistryClient (own token cache) for a known user, or any user/password."""
        known = {self.admin_user: self.admin_password, self.robot_user: self.robot_password,
                 self.reader_user: self.reader_password}
        return RegistryClient(self.registry.url, user, known.get(user) if password is None else password,
                              self.ca_file)

    def registries_config(self):
        """The `registries` list for archmerge's config (password_file filled in by the factory)."""
        return [{"host": self.harbor_host, "url": self.registry.url, "ca_file": self.ca_file,
                 "username": self.robot_user}]


# Tests that must have the machine to themselves: `make integration` runs
# everything else on several workers (pytest-xdist, `-m "not serial"`; each
# worker brings up its own registry and token service on free ports), then
# these alone (`-m serial`). A file name covers all its tests.
SERIAL = {
    "test_attacks.py": "floods, with latency bounds (p99) on the webhooks sent meanwhile",
    "test_compose.py": "a private dockerd and a container image build",
    "test_engine.py": "a private dockerd building and pushing images",
    "test_readiness.py::test_readyz_answers_from_state_while_the_registry_hangs": "80 probes, each within 2 s",
    "test_durability.py::test_faults_are_retried_and_results_exactly_right": "a run's time between 1.5 and 3 s",
    "test_replicas.py::test_two_replicas_converge_on_newest_children": "each round's final index within 2 s",
    "test_replicas.py::test_two_writers_with_the_default_configuration_converge": "each round's final index within 2 s",
}


# Exceptions inside a serial file.
PARALLEL = {
    # 2 minutes of the sender's kernel retrying SYNs (1, 3, 7, 15 s), not of
    # work; its bound (every webhook within 25 s) held at a load of 20 on 2 cores.
    "test_attacks.py::test_more_addresses_than_the_cap_covers_meet_the_documented_bound",
}


# Serial tests whose assertions are latency bounds of the product (webhooks'
# p99 under an attack): `make integration` runs them on the plain build, the
# binary users run, since ASan+UBSan's own cost (2-3x) is not the product's.
LATENCY = {
    "test_attacks.py": "p99 of the webhooks sent during each attack",
}


def _test_id(item) -> str:
    return f"{item.path.name}::{getattr(item, 'originalname', item.name)}"


def pytest_collection_modifyitems(config, items):
    for item in items:
        test = _test_id(item)
        if test not in PARALLEL and (item.path.name in SERIAL or test in SERIAL):
            item.add_marker(pytest.mark.serial)
            if item.path.name in LATENCY or test in LATENCY:
                item.add_marker(pytest.mark.latency)
    # The long one first, so that the other workers share the rest meanwhile.
    items.sort(key=lambda item: _test_id(item) not in PARALLEL)


def pytest_configure(config):
    # Turn SIGTERM (CI timeouts, `kill`) into KeyboardInterrupt so that fixture
    # teardown still stops servers and removes /etc/docker/certs.d entries.
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        def _term(signum, frame):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)   # a second SIGTERM kills outright
            raise KeyboardInterrupt("SIGTERM")
        signal.signal(signal.SIGTERM, _term)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach archmerge logs (and the registry log tail) to the report."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    factory = getattr(item, "_archmerge_factory", None)
    if factory is not None:
        for path, text in factory.logs():
            rep.sections.append((f"archmerge log {path}", text[-65536:] or "(empty)"))
    env = getattr(item, "_archmerge_env", None)
    if env is not None:
        tail = "\n".join(line[:400] for line in env.registry.log_text().splitlines()[-15:])
        rep.sections.append((f"registry log tail {env.registry.log_path}", tail))


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("archmerge-it"))
    os.chmod(workdir, 0o700)
    pki = pki_mod.create_pki(os.path.join(workdir, "pki"))
    # Token signing certificate, issued by the test CA. Like Harbor, the
    # registry's rootcertbundle holds the signing certificate itself (a bundle
    # holding the CA works too, see tokensrv.py).
    signer = pki.issue("token-signer", server=False, key_kind="rsa")
    users = {ROBOT_USER: secrets.token_urlsafe(18), ADMIN_USER: secrets.token_urlsafe(18),
             READER_USER: secrets.token_urlsafe(18)}
    tokens = TokenService(tls_cert=pki.server.cert, tls_key=pki.server.key, signing_key=signer.key,
                          signing_chain=[signer.cert], users=users, issuer=TOKEN_ISSUER, service=TOKEN_SERVICE,
                          permissions={ROBOT_USER: {"library/*": ["pull", "push"]}, READER_USER: ["pull"]})
    tokens.start()
    registry = Registry(os.path.join(workdir, "registry"), tls_cert=pki.server.cert, tls_key=pki.server.key,
                        cafile=pki.ca_cert, token_realm=tokens.realm, token_service=TOKEN_SERVICE,
                        token_issuer=TOKEN_ISSUER, token_rootcertbundle=signer.cert)
    atexit.register(registry.stop)        # safety net if the session dies hard
    try:
        registry.start()
    except BaseException:
        tokens.stop()
        raise
    e = Env(workdir=workdir, pki=pki, tokens=tokens, registry=registry,
            robot_user=ROBOT_USER, robot_password=users[ROBOT_USER],
            admin_user=ADMIN_USER, admin_password=users[ADMIN_USER],
            reader_user=READER_USER, reader_password=users[READER_USER],
            webhook_auth="Bearer " + secrets.token_urlsafe(24))
    try:
        yield e
    finally:
        registry.stop()
        tokens.stop()


@pytest.fixture(autouse=True)
def _attach_env_for_reports(request):
    # Only if the session env is already up (do not force it on unit-style tests).
    if "env" in request.fixturenames:
        request.node._archmerge_env = request.getfixturevalue("env")
    yield


@pytest.fixture(scope="session")
def registry(env):
    return env.registry


@pytest.fixture(scope="session")
def token_service(env):
    return env.tokens


@pytest.fixture(scope="session")
def admin_client(env):
    return env.client(ADMIN_USER)


@pytest.fixture(scope="session")
def robot_client(env):
    return env.client(ROBOT_USER)


@pytest.fixture(scope="session")
def skopeo(env):
    return Skopeo(env.workdir, env.ca_file, env.admin_user, env.admin_password)


@pytest.fixture(scope="session")
def docker_cli(env):
    cli = DockerCLI(env.workdir, env.registry.host, env.ca_file, env.admin_user, env.admin_password)
    atexit.register(cli.cleanup)
    try:
        yield cli
    finally:
        cli.cleanup()


@pytest.fixture
def archmerge(env, request, tmp_path):
    """Factory: archmerge(config_text=None, *, webhook_auth=None, registry_password=None,
    binary=None, wait=True, timeout=10) -> ArchmergeProcess (url, port, webhook_url,
    log_path, send(), stop()). Processes are stopped at teardown; logs are
    attached to the report when the test fails."""
    factory = ArchmergeFactory(str(tmp_path / "archmerge"), cafile=env.ca_file, certificate=env.pki.server.cert,
                               private_key=env.pki.server.key, registries=env.registries_config(),
                               webhook_auth=env.webhook_auth, registry_password=env.robot_password)
    request.node._archmerge_factory = factory
    try:
        yield factory
    finally:
        factory.stop_all()
    # A clean SIGTERM shutdown exits 0; under ASan/LSan a leak or memory error
    # at shutdown makes the exit code non-zero and fails the test here.
    for p in factory.instances:
        if getattr(p, "expect_clean_exit", True):
            assert p.returncode == 0, f"archmerge exited with {p.returncode}; log:\n{p.log_text()[-4000:]}"


@pytest.fixture
def archmerge_config(archmerge):
    """archmerge_config(**overrides) -> config text for this test's archmerge port."""
    return archmerge.config
