"""Self-tests of the integration scaffolding against the real registry,
skopeo and docker CLI (no archmerge needed). Keep this file fast."""

import base64
import json
import os
import re
import stat
import threading
import urllib.request

import jwt
import pytest
from cryptography import x509

from harness import images, pki as pki_mod, webhook
from harness.archmerge import FAKE_BIN, make_config, render_libconfig
from harness.images import RegistryClient, RegistryError
from harness.registry import Registry
from harness.tools import DockerCLI, ToolError
from harness.util import client_tls_context, read_log, sha256_digest, wait_log, wait_until


def ref(env, repo, tag_or_digest):
    sep = "@" if tag_or_digest.startswith("sha256:") else ":"
    return f"{env.registry.host}/{repo}{sep}{tag_or_digest}"


# ---------------------------------------------------------------- images

def test_docker_image_roundtrip(env, admin_client, skopeo, docker_cli):
    repo = "library/harness-docker"
    pushed = admin_client.push_image(repo, "1.0-amd64", arch="amd64", fmt="docker")
    assert pushed.media_type == images.DOCKER_MANIFEST
    assert pushed.digest == sha256_digest(pushed.body) and pushed.size == len(pushed.body)

    got = admin_client.get_manifest(repo, "1.0-amd64")
    assert got.body == pushed.body and got.digest == pushed.digest
    assert got.content_type == images.DOCKER_MANIFEST
    assert got.json["config"]["mediaType"] == images.DOCKER_CONFIG
    assert got.json["layers"][0]["mediaType"] == images.DOCKER_LAYER

    # skopeo over verified TLS: exact bytes, and the config's platform
    raw = skopeo.inspect_raw_bytes(ref(env, repo, "1.0-amd64"))
    assert sha256_digest(raw) == pushed.digest
    cfg = skopeo.inspect(ref(env, repo, "1.0-amd64"), config=True)
    assert (cfg["architecture"], cfg["os"]) == ("amd64", "linux")
    assert cfg["rootfs"]["diff_ids"][0].startswith("sha256:")

    assert docker_cli.manifest_inspect(f"{repo}:1.0-amd64") == pushed.json
    # layer blob is a real gzip'd tar whose diff_id matches the config
    import gzip
    layer = admin_client.get_blob(repo, pushed.layer_digests[0])
    assert sha256_digest(gzip.decompress(layer)) == cfg["rootfs"]["diff_ids"][0]


def test_oci_image_platform_fields_and_salt(env, admin_client, skopeo, docker_cli):
    repo = "library/harness-oci"
    a = admin_client.push_image(repo, "2.0-arm64", arch="arm64", variant="v8", fmt="oci",
                                os="windows", os_version="10.0.20348.1", os_features=["win32k"])
    assert a.media_type == images.OCI_MANIFEST
    assert a.platform == {"architecture": "arm64", "os": "windows", "os.version": "10.0.20348.1",
                          "os.features": ["win32k"], "variant": "v8"}
    raw = skopeo.inspect(ref(env, repo, "2.0-arm64"))
    assert raw["mediaType"] == images.OCI_MANIFEST and raw["config"]["mediaType"] == images.OCI_CONFIG
    assert raw["layers"][0]["mediaType"] == images.OCI_LAYER
    cfg = skopeo.inspect(ref(env, repo, "2.0-arm64"), config=True)
    assert {k: cfg.get(k) for k in a.platform} == a.platform
    assert docker_cli.manifest_inspect(f"{repo}:2.0-arm64") == a.json

    # deterministic without salt, different with one; arch may contradict the tag
    again = admin_client.push_image(repo, "2.0-arm64", arch="arm64", variant="v8", fmt="oci",
                                    os="windows", os_version="10.0.20348.1", os_features=["win32k"])
    assert again.digest == a.digest
    salted = admin_client.push_image(repo, "2.0-arm64", arch="arm64", variant="v8", fmt="oci",
                                     os="windows", os_version="10.0.20348.1", os_features=["win32k"], salt="x")
    assert salted.digest != a.digest and salted.layer_digests != a.layer_digests
    wrong = admin_client.push_image(repo, "2.0-amd64", arch="s390x", fmt="oci")
    assert skopeo.inspect(ref(env, repo, "2.0-amd64"), config=True)["architecture"] == "s390x"
    assert admin_client.head_manifest(repo, "2.0-amd64")["digest"] == wrong.digest


def test_buildx_style_index(env, admin_client, skopeo, docker_cli):
    repo = "library/harness-buildx"
    bx = admin_client.push_buildx_index(repo, "3.0-amd64", arch="amd64")
    idx = admin_client.get_manifest(repo, "3.0-amd64")
    assert idx.content_type == images.OCI_INDEX and idx.digest == bx.digest
    m = idx.json["manifests"]
    assert [d["digest"] for d in m] == [bx.image.digest, bx.attestation.digest]
    assert m[0]["platform"] == {"architecture": "amd64", "os": "linux"}
    assert m[1]["platform"] == {"architecture": "unknown", "os": "unknown"}
    assert m[1]["annotations"] == {"vnd.docker.reference.type": "attestation-manifest",
                                   "vnd.docker.reference.digest": bx.image.digest}
    # children were pushed by digest only: the only tag is the index's
    assert admin_client.list_tags(repo) == ["3.0-amd64"]
    att = admin_client.get_manifest(repo, bx.attestation.digest).json
    assert att["layers"][0]["mediaType"] == images.IN_TOTO
    statement = json.loads(admin_client.get_blob(repo, att["layers"][0]["digest"]))
    assert statement["subject"][0]["digest"]["sha256"] == bx.image.digest.split(":")[1]

    assert skopeo.inspect(ref(env, repo, "3.0-amd64")) == idx.json
    assert skopeo.inspect(ref(env, repo, bx.image.digest), config=True)["architecture"] == "amd64"
    # docker re-serialises indexes and drops descriptor annotations
    stripped = dict(idx.json, manifests=[{k: v for k, v in d.items() if k != "annotations"} for d in m])
    assert docker_cli.manifest_inspect(f"{repo}:3.0-amd64") == stripped
    verbose = docker_cli.manifest_inspect(f"{repo}:3.0-amd64", verbose=True)
    assert {e["Descriptor"]["digest"] for e in verbose} == {bx.image.digest, bx.attestation.digest}

    # several platforms, and a Docker manifest list built from plain images
    multi = admin_client.push_buildx_index(repo, "3.0-multi", platforms=[
        {"arch": "amd64"}, {"arch": "arm", "variant": "v7"}], salt="multi")
    assert len(multi.images) == 2 and len(multi.attestations) == 2
    a = admin_client.push_image(repo, None, arch="amd64")
    b = admin_client.push_image(repo, None, arch="arm64")
    lst = admin_client.push_index(repo, "3.0-list", [a, b], media_type=images.DOCKER_LIST)
    got = skopeo.inspect(ref(env, repo, "3.0-list"))
    assert got["mediaType"] == images.DOCKER_LIST
    assert [d["platform"]["architecture"] for d in got["manifests"]] == ["amd64", "arm64"]
    assert lst.digest == admin_client.head_manifest(repo, "3.0-list")["digest"]


def test_delete_and_missing_manifest(admin_client):
    repo = "library/harness-delete"
    p = admin_client.push_image(repo, "1-amd64", arch="amd64", salt="del")
    assert admin_client.delete_manifest(repo, "1-amd64") == p.digest
    assert admin_client.get_manifest(repo, "1-amd64") is None
    assert admin_client.head_manifest(repo, p.digest) is None
    assert admin_client.get_manifest(repo, "never-pushed") is None


def test_registry_access_log_and_token_outage(env):
    c = env.client()
    c.push_image("library/harness-log", "1-amd64", arch="amd64", salt="log")
    log = env.registry.access_log(user_agent="Python-urllib")
    assert ("PUT", "/v2/library/harness-log/manifests/1-amd64", 201) in log
    env.tokens.fail_status = 503
    try:
        with pytest.raises(RegistryError) as err:
            env.client().get_manifest("library/harness-log", "1-amd64")
        assert err.value.status == 503
    finally:
        env.tokens.fail_status = None


# ---------------------------------------------------------------- auth

def _token(env, user, password, *scopes):
    q = "service=harbor-registry" + "".join(f"&scope={s}" for s in scopes)
    headers = {}
    if user is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(f"{env.tokens.realm}?{q}", headers=headers)
    with urllib.request.urlopen(req, context=client_tls_context(env.ca_file), timeout=5) as r:
        assert r.status == 200
        return json.load(r)


def test_token_service_reply_and_claims(env):
    before = env.tokens.request_count
    reply = _token(env, env.robot_user, env.robot_password,
                   "repository:library/app:pull,push", "repository:other/app:pull,push")
    assert set(reply) == {"token", "access_token", "expires_in", "issued_at"}
    assert reply["access_token"] == "" and reply["expires_in"] == 1800
    assert env.tokens.request_count == before + 1

    header = jwt.get_unverified_header(reply["token"])
    assert header["alg"] == "RS256"
    signer = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    claims = jwt.decode(reply["token"], signer.public_key(), algorithms=["RS256"], audience="harbor-registry",
                        issuer="harbor-token-issuer")
    assert claims["sub"] == env.robot_user
    assert {"exp", "nbf", "iat", "jti"} <= set(claims)
    # the robot may push only in library/*
    assert claims["access"] == [{"type": "repository", "name": "library/app", "actions": ["pull", "push"]},
                                {"type": "repository", "name": "other/app", "actions": []}]

    no_scope = jwt.decode(_token(env, env.admin_user, env.admin_password)["token"], options={"verify_signature": False})
    assert no_scope["access"] == []


def test_wrong_credentials_get_anonymous_token_then_401(env, skopeo):
    reply = _token(env, env.robot_user, "wrong", "repository:library/app:pull,push")
    claims = jwt.decode(reply["token"], options={"verify_signature": False})
    assert claims["sub"] == "" and claims["access"][0]["actions"] == []
    assert env.tokens.requests[-1].user == env.robot_user and not env.tokens.requests[-1].authenticated

    bad = RegistryClient(env.registry.url, env.robot_user, "wrong", env.ca_file)
    with pytest.raises(RegistryError) as err:
        bad.push_image("library/harness-denied", "1-amd64", arch="amd64")
    assert err.value.status == 401
    assert "insufficient_scope" in err.value.headers.get("www-authenticate", "")
    assert bad.token_fetches >= 1

    # valid but pull-only credentials cannot push either
    reader = env.client(env.reader_user)
    with pytest.raises(RegistryError) as err:
        reader.push_image("library/harness-denied", "1-amd64", arch="amd64")
    assert err.value.status == 401

    with pytest.raises(ToolError) as terr:
        skopeo.inspect(ref(env, "library/harness-docker", "1.0-amd64"), creds=f"{env.robot_user}:wrong")
    assert "unauthorized" in terr.value.stderr.lower() or "denied" in terr.value.stderr.lower()


# ---------------------------------------------------------------- TLS facts

def test_skopeo_verifies_tls(env, tmp_path):
    from harness.tools import Skopeo
    other = pki_mod.create_pki(str(tmp_path / "other-ca"))
    wrong_ca = Skopeo(str(tmp_path), other.ca_cert, env.admin_user, env.admin_password)
    with pytest.raises(ToolError) as err:
        wrong_ca.inspect(ref(env, "library/harness-docker", "1.0-amd64"))
    assert "x509" in err.value.stderr or "certificate" in err.value.stderr


def test_docker_cli_does_not_verify_loopback_tls(env, docker_cli, tmp_path):
    """Documents a docker CLI fact the suite relies on knowing: registries on
    127.0.0.0/8 (and localhost) are implicitly "insecure", so the CLI skips
    certificate verification and ignores /etc/docker/certs.d for them. A CA
    from another PKI still works. If this ever fails, docker started verifying
    and can be used as a TLS check too (see tools.py)."""
    admin = RegistryClient(env.registry.url, env.admin_user, env.admin_password, env.ca_file)
    pushed = admin.push_image("library/harness-dockertls", "1-amd64", arch="amd64")
    assert os.path.isfile(docker_cli.ca_path)
    other = pki_mod.create_pki(str(tmp_path / "other-ca"))
    with DockerCLI(str(tmp_path), env.registry.host, other.ca_cert, env.admin_user, env.admin_password) as bogus:
        assert open(bogus.ca_path).read() == open(other.ca_cert).read()
        assert bogus.manifest_inspect("library/harness-dockertls:1-amd64") == pushed.json
    # the session's CA file is restored afterwards
    assert open(docker_cli.ca_path).read() == open(env.ca_file).read()


def test_plain_http_registry_without_auth(tmp_path):
    with Registry(str(tmp_path / "plain")) as plain:
        assert plain.url.startswith("http://127.0.0.1:")
        c = RegistryClient(plain.url)
        p = c.push_image("library/demo", "1-amd64", arch="amd64", fmt="oci")
        assert c.get_manifest("library/demo", "1-amd64").digest == p.digest
        assert c.token_fetches == 0
    assert plain.proc.poll() is not None


# ---------------------------------------------------------------- webhook payloads

def test_webhook_payload_shapes():
    d = "sha256:" + "ab" * 32
    p, ct = webhook.push_event("library/team/app", d, "3.8.5-amd64", operator="robot$library+ci", occur_at=1)
    assert ct == "application/json"
    assert p == {"type": "PUSH_ARTIFACT", "occur_at": 1, "operator": "robot$library+ci", "event_data": {
        "resources": [{"digest": d, "tag": "3.8.5-amd64",
                       "resource_url": "harbor.example.com/library/team/app:3.8.5-amd64"}],
        "repository": {"date_created": 1767000000, "name": "team/app", "namespace": "library",
                       "repo_full_name": "library/team/app", "repo_type": "private"}}}

    ce, ct = webhook.push_event("library/app", d, None, fmt="cloudevents")   # pushed by digest
    assert ct == "application/cloudevents+json"
    assert ce["specversion"] == "1.0" and ce["type"] == "harbor.artifact.pushed"
    assert ce["source"] == "/projects/1/webhook/policies/3" and ce["datacontenttype"] == "application/json"
    assert ce["time"].endswith("Z") and ce["id"] and ce["requestid"]
    assert ce["data"]["resources"] == [{"digest": d, "tag": d, "resource_url": f"harbor.example.com/library/app@{d}"}]
    assert set(ce) == {"specversion", "requestid", "id", "source", "type", "datacontenttype", "time", "data",
                       "operator"}


def test_libconfig_rendering():
    text = make_config(port=1234, certificate="/c.pem", private_key="/k.pem", webhook_secret_file="/s",
                       registries=[{"host": "h", "url": "https://127.0.0.1:1", "ca_file": "/ca",
                                    "username": "robot$library+archmerge", "password_file": "/p"}])
    assert 'listen = "127.0.0.1:1234";' in text
    assert 'username = "robot$library+archmerge";' in text
    assert 'repositories = [ "library/*" ];' in text and 'architectures = [ "amd64", "arm64" ];' in text
    assert 'workers = 2;' in text and text.count("(") == 2
    assert render_libconfig({"s": 'a"b\\c', "b": True, "l": []}) == 's = "a\\"b\\\\c";\nb = true;\nl = ();\n'


# ---------------------------------------------------------------- archmerge fixture (with a stand-in binary)

def test_archmerge_fixture_with_stub(env, archmerge, archmerge_config):
    am = archmerge(archmerge_config(), binary=FAKE_BIN)
    assert am.alive() and am.webhook_url == f"https://127.0.0.1:{am.port}/hooks/harbor"
    for path in (am.config_path, archmerge.webhook_secret_file, archmerge.password_file):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(archmerge.webhook_secret_file) as f:
        assert f.read().strip() == env.webhook_auth
    with open(archmerge.password_file) as f:
        assert f.read().strip() == env.robot_password
    assert f'url = "{env.registry.url}"' in open(am.config_path).read()

    payload, ct = webhook.push_event("library/app", "sha256:" + "0" * 64, "1-amd64")
    assert am.send(payload, ct) == (202, {"status": "accepted"})
    ce, ce_ct = webhook.push_event("library/app", "sha256:" + "0" * 64, "1-amd64", fmt="cloudevents")
    assert am.send(ce, ce_ct)[0] == 202
    assert am.send(payload, ct, auth_header="Bearer wrong")[0] == 401
    assert am.send(payload, ct, auth_header=None)[0] == 401
    assert am.send(payload, "text/plain")[0] == 415
    assert am.send(b"{not json", ct)[0] == 400
    assert am.send(b"x" * (2 << 20), ct)[0] == 413
    status, body = webhook.send(am.webhook_url, None, None, env.webhook_auth, env.ca_file, method="GET")
    assert status == 405 and body == {"error": "method not allowed"}

    wait_until(lambda: "POST /hooks/harbor" in am.log_text(), timeout=5)
    assert am.stop() == 0 and not am.alive()


def test_archmerge_fixture_reports_early_exit(archmerge, archmerge_config, tmp_path):
    script = tmp_path / "dies"
    script.write_text("#!/bin/sh\necho 'cannot parse config' >&2\nexit 3\n")
    script.chmod(0o755)
    with pytest.raises(RuntimeError) as err:
        archmerge(archmerge_config(), binary=str(script), timeout=5)
    assert "exited with 3" in str(err.value) and "cannot parse config" in str(err.value)


def test_wait_log_waits_for_a_line_written_after_the_answer(tmp_path):
    """A service logs a request after answering it: a single read right after
    the answer can miss the line (test_hostile's 408 lines under valgrind).
    wait_log reads until the count is reached, and names what it missed."""
    path = str(tmp_path / "late.log")
    with open(path, "w") as f:
        f.write("status=408\nstatus=408\n")

    def late():
        with open(path, "a") as f:
            f.write("status=408\n")
    timer = threading.Timer(0.3, late)
    timer.start()
    try:
        assert read_log(path).count("status=408") == 2          # what a single read saw
        assert wait_log(lambda: read_log(path), "status=408", count=3, timeout=10).count("status=408") == 3
        assert wait_log(lambda: read_log(path), re.compile(r"^status=4\d\d$", re.M), count=3, timeout=1)
    finally:
        timer.cancel()
    with pytest.raises(TimeoutError, match="4 x 'status=408'"):
        wait_log(lambda: read_log(path), "status=408", count=4, timeout=0.3)
