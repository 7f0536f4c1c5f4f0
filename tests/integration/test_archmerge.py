"""End-to-end tests of the real archmerge binary: HTTPS webhooks in, an index
out, on a real distribution registry with TLS and Harbor-like token auth.
Results are checked with skopeo (verified TLS) and `docker manifest inspect`."""

import json
import os
import re
import ssl
import subprocess
import time
import warnings

import pytest

from harness import images, webhook
from harness.archmerge import archmerge_bin
from harness.util import client_tls_context, sha256_digest, wait_until

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def ref(env, repo, tag):
    return f"{env.registry.host}/{repo}:{tag}"


def hook(am, repo, pushed, tag, fmt="default", **kw):
    payload, ct = webhook.push_event(repo, pushed.digest, tag, fmt=fmt, **kw)
    return am.send(payload, ct)


def wait_index(env, client, repo, tag, digest_not=None, timeout=15):
    """Wait until repo:tag exists (and differs from digest_not); return the Manifest."""
    def ready():
        m = client.get_manifest(repo, tag)
        if m is not None and m.digest != digest_not:
            return m
        return None
    return wait_until(ready, timeout, message=f"{repo}:{tag} was not published")


def wait_log(am, pattern, timeout=15):
    rx = re.compile(pattern)
    return wait_until(lambda: rx.search(am.log_text()), timeout,
                      message=f"log never matched {pattern!r}")


def platforms(index):
    return [(m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant"))
            for m in index["manifests"]]


# ------------------------------------------------------------------ TLS

def test_https_real_tls_request_and_tls12_minimum(env, archmerge):
    am = archmerge()
    # A real TLS request, verified against the test CA (CivetWeb/OpenSSL 3 crash guard).
    status, body = webhook.send(am.webhook_url, None, None, env.webhook_auth, env.ca_file, method="GET")
    assert status == 405 and body["status"] == "rejected"
    # Several requests on fresh connections: the process keeps serving.
    for _ in range(5):
        status, _ = am.send({"type": "PULL_ARTIFACT"})
        assert status == 200
    assert am.alive()
    # TLS 1.2 is accepted, TLS 1.1 refused by the server (the client allows it here).
    ctx = client_tls_context(env.ca_file)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    _handshake(ctx, am.port)
    ctx = client_tls_context(env.ca_file)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(ctx, am.port)
    wait_log(am, r"unsupported protocol")
    assert am.alive()


def _handshake(ctx, port):
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost"):
            pass


# ------------------------------------------------------------------ main path

def test_waits_then_publishes_oci_index_from_docker_and_buildx(env, admin_client, skopeo, docker_cli,
                                                             archmerge):
    am = archmerge()
    repo = "library/myapp"
    amd = admin_client.push_image(repo, "3.8.5-amd64", arch="amd64", fmt="docker")
    status, body = hook(am, repo, amd, "3.8.5-amd64")
    assert status == 202, body
    assert body["status"] == "queued"
    assert body["groups"] == [f"{env.harbor_host}/{repo}:3.8.5"]
    wait_log(am, r"group=\S+/library/myapp:3\.8\.5 .*result=waiting .*missing arm64")
    assert admin_client.get_manifest(repo, "3.8.5") is None

    # arm64 arrives as a buildx index with an attestation, announced in CloudEvents format;
    # Harbor also fires digest-only events for the children: those are ignored.
    bx = admin_client.push_buildx_index(repo, "3.8.5-arm64", arch="arm64")
    for child in (bx.image, bx.attestation):
        status, body = am.send(*webhook.push_event(repo, child.digest, None, fmt="cloudevents"))
        assert status == 200 and body["status"] == "ignored", body
    status, body = hook(am, repo, bx.index, "3.8.5-arm64", fmt="cloudevents")
    assert status == 202, body

    m = wait_index(env, admin_client, repo, "3.8.5")
    raw = skopeo.inspect_raw_bytes(ref(env, repo, "3.8.5"))
    assert sha256_digest(raw) == m.digest
    index = json.loads(raw)
    assert index["mediaType"] == OCI_INDEX and m.content_type == OCI_INDEX
    # images in the rule's order, then the kept attestation (keep_attestations defaults to true)
    assert [d["digest"] for d in index["manifests"]] == [amd.digest, bx.image.digest, bx.attestation.digest]
    assert [d["mediaType"] for d in index["manifests"]][:2] == [images.DOCKER_MANIFEST, images.OCI_MANIFEST]
    assert [d["size"] for d in index["manifests"]][:2] == [amd.size, bx.image.size]
    assert platforms(index)[:2] == [("linux", "amd64", None), ("linux", "arm64", None)]
    assert index["manifests"][2]["annotations"]["vnd.docker.reference.digest"] == bx.image.digest
    wait_log(am, r"result=published digest=" + re.escape(m.digest))

    inspected = docker_cli.manifest_inspect(f"{repo}:3.8.5")
    assert [d["digest"] for d in inspected["manifests"]][:2] == [amd.digest, bx.image.digest]
    assert [d["platform"]["architecture"] for d in inspected["manifests"]][:2] == ["amd64", "arm64"]


def test_docker_list_when_every_child_is_docker(env, admin_client, skopeo, docker_cli, archmerge):
    am = archmerge()
    repo = "library/dockeronly"
    amd = admin_client.push_image(repo, "1.0-amd64", arch="x86_64", fmt="docker")
    arm = admin_client.push_image(repo, "1.0-arm64", arch="aarch64", variant="v8", fmt="docker")
    # Out of order, twice each: the result is the same.
    for pushed, tag in ((arm, "1.0-arm64"), (amd, "1.0-amd64"), (arm, "1.0-arm64"), (amd, "1.0-amd64")):
        assert hook(am, repo, pushed, tag)[0] == 202
    m = wait_index(env, admin_client, repo, "1.0")
    index = skopeo.inspect(ref(env, repo, "1.0"))
    assert index["mediaType"] == DOCKER_LIST and m.content_type == DOCKER_LIST
    assert [d["digest"] for d in index["manifests"]] == [amd.digest, arm.digest]
    # normalised from the image config: x86_64 -> amd64, aarch64/v8 -> arm64
    assert platforms(index) == [("linux", "amd64", None), ("linux", "arm64", None)]
    assert docker_cli.manifest_inspect(f"{repo}:1.0")["mediaType"] == DOCKER_LIST


def test_wrong_architecture_is_refused(env, admin_client, archmerge):
    am = archmerge()
    repo = "library/wrongarch"
    amd = admin_client.push_image(repo, "2.0-amd64", arch="amd64")
    liar = admin_client.push_image(repo, "2.0-arm64", arch="amd64", salt="liar")
    assert hook(am, repo, amd, "2.0-amd64")[0] == 202
    assert hook(am, repo, liar, "2.0-arm64")[0] == 202
    wait_log(am, r"library/wrongarch:2\.0 .*result=refused .*image config says linux/amd64 "
                 r"but the tag says arm64")
    assert admin_client.get_manifest(repo, "2.0") is None


def test_unchanged_index_not_pushed_again_and_changed_child_republished(env, admin_client, skopeo,
                                                                        archmerge):
    am = archmerge()
    repo = "library/rebuild"
    amd = admin_client.push_image(repo, "5.1-amd64", arch="amd64")
    arm = admin_client.push_image(repo, "5.1-arm64", arch="arm64")
    assert hook(am, repo, amd, "5.1-amd64")[0] == 202
    assert hook(am, repo, arm, "5.1-arm64")[0] == 202
    first = wait_index(env, admin_client, repo, "5.1")
    wait_log(am, r"library/rebuild:5\.1 .*result=published")

    def puts_to_target():
        return [e for e in env.registry.access_log()
                if e[0] == "PUT" and e[1] == f"/v2/{repo}/manifests/5.1"]
    n_puts = len(puts_to_target())
    assert n_puts == 1

    # A repeated webhook: same index, no second PUT.
    assert hook(am, repo, arm, "5.1-arm64")[0] == 202
    wait_log(am, r"library/rebuild:5\.1 .*result=unchanged digest=" + re.escape(first.digest))
    assert len(puts_to_target()) == n_puts

    # arm64 rebuilt with new content: the index is rebuilt with the new child.
    arm2 = admin_client.push_image(repo, "5.1-arm64", arch="arm64", salt="rebuild")
    assert arm2.digest != arm.digest
    assert hook(am, repo, arm2, "5.1-arm64")[0] == 202
    second = wait_index(env, admin_client, repo, "5.1", digest_not=first.digest)
    index = json.loads(skopeo.inspect_raw_bytes(ref(env, repo, "5.1")))
    assert [d["digest"] for d in index["manifests"]] == [amd.digest, arm2.digest]
    assert second.digest != first.digest


@pytest.mark.parametrize("label, server, cold, warm", [("single", {"single_writer": True}, 6, 4),
                                                        ("default", {}, 8, 6),
                                                        ("replicas-1", {"replicas": 1}, 8, 6),
                                                        ("replicas-2", {"replicas": 2}, 8, 6)])
def test_registry_requests_per_index(env, admin_client, archmerge, label, server, cold, warm):
    """Issue 14: a declared single writer reads a cold 2-arch index with 6 registry
    requests (2 manifests, 2 config blobs, the target's HEAD, the PUT) and a warm one
    (configs cached) with 4. Every other configuration, the default and `replicas = 1`
    included (issue 22.2), HEADs both source tags again after the PUT (issue 9.4): 8 and 6."""
    am = archmerge(archmerge.config(server_extra=server,
                                    extra={"reconcile": {"on_start": False, "interval_s": 0}}))
    recheck = not server.get("single_writer")
    repo = f"library/requests-{label}"
    amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64", salt=repo)
    arm = admin_client.push_image(repo, "1.0-arm64", arch="arm64", salt=repo)
    for pushed in (amd, arm):           # the same images as version 2.0: their configs are cached
        admin_client.put_manifest(repo, pushed.ref.replace("1.0", "2.0"), pushed.body, pushed.media_type)

    def ours():
        return [(m, p) for m, p, _ in env.registry.access_log(user_agent="archmerge/", pings=False)
                if p.startswith(f"/v2/{repo}/")]

    def settled():
        before, last = -1, len(ours())
        while before != last:
            time.sleep(0.5)
            before, last = last, len(ours())
        return ours()

    # The process's first requests learn the token realm from a 401, once per lifetime.
    first = admin_client.push_image(f"{repo}-first", "0.1-amd64", arch="amd64", salt=repo + "-first")
    assert hook(am, f"{repo}-first", first, "0.1-amd64")[0] == 202
    wait_log(am, re.escape(f"{repo}-first:0.1") + r" .*result=waiting")
    counts = []
    for version in ("1.0", "2.0"):
        seen = len(ours())
        assert hook(am, repo, arm, f"{version}-arm64")[0] == 202    # both present: one run
        wait_log(am, re.escape(f"{repo}:{version}") + r" .*result=published")
        made = settled()[seen:]
        counts.append(len(made))
        heads = [p for m, p in made if m == "HEAD"]
        assert heads.count(f"/v2/{repo}/manifests/{version}") == 1, made
        assert len(heads) == (3 if recheck else 1), made
    assert counts == [cold, warm], (counts, made)


def test_own_index_push_coming_back_is_ignored_without_registry_traffic(env, admin_client, archmerge):
    am = archmerge()
    repo = "library/selfhook"
    before = len(env.registry.access_log(pings=False))
    # the service's own push of library/selfhook:7.0 (operator = its robot): a target tag
    for operator in (env.robot_user, "someone-else"):
        status, body = am.send(*webhook.push_event(repo, "sha256:" + "ab" * 32, "7.0",
                                                   operator=operator))
        assert status == 200 and body["status"] == "ignored"
        assert "target" in body["reason"] and "own output" in body["reason"]
    assert len(env.registry.access_log(pings=False)) == before


def remembered(archmerge):
    path = os.path.join(archmerge.state_dir, "repositories")
    return open(path).read().split() if os.path.exists(path) else []


def test_shared_account_source_pushes_publish_and_own_writes_are_known(env, robot_client, admin_client,
                                                                       archmerge):
    """Issue 9.1: CI pushes with the very account archmerge uses (one robot for both)."""
    am = archmerge()
    repo = "library/shared"
    amd = robot_client.push_image(repo, "2.0-amd64", arch="amd64")
    arm = robot_client.push_image(repo, "2.0-arm64", arch="arm64")
    for pushed, tag in ((amd, "2.0-amd64"), (arm, "2.0-arm64")):
        status, body = hook(am, repo, pushed, tag, operator=env.robot_user)
        assert status == 202 and body["status"] == "queued", body
    index = wait_index(env, admin_client, repo, "2.0")
    wait_log(am, r"library/shared:2\.0 .*result=published")
    assert [d["digest"] for d in json.loads(index.body)["manifests"]] == [amd.digest, arm.digest]
    assert any(r.endswith("/" + repo) for r in remembered(archmerge)), remembered(archmerge)

    # The registry announcing archmerge's own index push: ignored, no registry work.
    # Both webhooks may have started a run: wait until the second one is over too.
    before, last = -1, len(env.registry.access_log(pings=False))
    while before != last:
        time.sleep(1.0)
        before, last = last, len(env.registry.access_log(pings=False))
    status, body = hook(am, repo, index, "2.0", operator=env.robot_user)
    assert status == 200 and body["status"] == "ignored" and "own" in body["reason"], body
    assert len(env.registry.access_log(pings=False)) == before

    # A repository seen only through a target-tag event is remembered for reconcile too.
    status, body = am.send(*webhook.push_event("library/only-target", "sha256:" + "cd" * 32, "9.9",
                                               operator=env.robot_user))
    assert status == 200 and body["status"] == "ignored"
    wait_until(lambda: any(r.endswith("/library/only-target") for r in remembered(archmerge)), 10,
               message="library/only-target was not remembered")


def test_ignored_events(env, archmerge):
    am = archmerge()
    d = "sha256:" + "cd" * 32
    cases = [
        (webhook.push_event("library/x", d, None), "digest"),                     # pushed by digest
        (webhook.push_event("library/x", d, "1.0-s390x"), "no rule"),            # arch not in rule
        (webhook.push_event("other/x", d, "1.0-amd64"), "no rule"),              # repo not covered
        (webhook.push_event("library/x", d, "1.0-amd64", host="elsewhere.example"), "unknown registry"),
        (({"type": "PULL_ARTIFACT", "event_data": {}}, webhook.CT_DEFAULT), "not a push"),
        (webhook.push_event("library/x", d, "1.0-amd64", fmt="cloudevents",
                            event_type="harbor.artifact.deleted"), "not a push"),
    ]
    for (payload, ct), reason in cases:
        status, body = am.send(payload, ct)
        assert status == 200, (payload, body)
        assert body["status"] == "ignored" and reason in body["reason"], body


def test_rejections(env, archmerge):
    am = archmerge()
    good, ct = webhook.push_event("library/x", "sha256:" + "ef" * 32, "1.0-amd64")
    # 401: missing, wrong, and a prefix of the right value
    for auth in (None, "Bearer nope", env.webhook_auth[:-1]):
        status, body = am.send(good, ct, auth_header=auth)
        assert status == 401 and isinstance(body, dict) and body["status"] == "rejected", repr(body)
    # 405
    assert am.send(None, None, method="GET")[0] == 405
    assert am.send(good, ct, method="PUT")[0] == 405
    # 413: over the default 1 MiB cap
    status, body = am.send(b"{" + b" " * (2 * 1024 * 1024) + b"}", ct)
    assert status == 413
    # 415
    assert am.send(good, "text/plain")[0] == 415
    assert am.send(good, None)[0] == 415
    # 400 with a one-line reason
    for payload, word in ((b"{not json", "JSON"),
                          ({"type": "PUSH_ARTIFACT"}, "event_data"),
                          ({"type": "PUSH_ARTIFACT", "event_data": {"resources": [],
                            "repository": {"repo_full_name": "library/x"}}}, "resources"),
                          (webhook.push_event("Library/BAD", "sha256:" + "ef" * 32, "1.0-amd64")[0],
                           "repo_full_name"),
                          (webhook.push_event("library/x", "sha256:" + "ef" * 32, "a/b")[0], "tag")):
        status, body = am.send(payload, ct)
        assert status == 400, (payload, body)
        assert word in body["error"] and "\n" not in body["error"]
    # charset parameter is fine
    assert am.send(good, "application/json; charset=utf-8")[0] == 202
    assert am.alive()
    log = am.wait_log("status=202")           # the last answer's line: the whole log is written
    assert env.webhook_auth not in log and env.robot_password not in log


def test_wrong_registry_credentials_reported(env, admin_client, archmerge):
    am = archmerge(registry_password="not-the-password")
    repo = "library/badcreds"
    amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64")
    arm = admin_client.push_image(repo, "1.0-arm64", arch="arm64")
    assert hook(am, repo, amd, "1.0-amd64")[0] == 202
    assert hook(am, repo, arm, "1.0-arm64")[0] == 202
    wait_log(am, r"library/badcreds:1\.0 .*result=failed .*credentials")
    assert admin_client.get_manifest(repo, "1.0") is None
    assert "not-the-password" not in am.log_text()


# ------------------------------------------------------------------ command line

def run_cli(*args, timeout=30):
    return subprocess.run([archmerge_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_cli_check_config_and_assemble(env, admin_client, skopeo, archmerge):
    am = archmerge()
    cfg = am.config_path
    p = run_cli("check-config", "-c", cfg)
    assert p.returncode == 0 and p.stdout.splitlines()[0] == "configuration OK", p.stderr
    am.stop()

    repo = "library/clitool"
    amd = admin_client.push_image(repo, "9.0-amd64", arch="amd64", fmt="oci")
    p = run_cli("assemble", "-c", cfg, repo, "9.0")
    assert p.returncode == 3, p.stderr           # waiting for arm64
    assert "missing arm64" in p.stderr
    arm = admin_client.push_image(repo, "9.0-arm64", arch="arm64", fmt="oci")

    p = run_cli("assemble", "-c", cfg, repo, "9.0", "--dry-run")
    assert p.returncode == 0, p.stderr
    printed = json.loads(p.stdout)
    dry_bytes = p.stdout[:-1].encode()
    assert [d["digest"] for d in printed["manifests"]] == [amd.digest, arm.digest]
    assert admin_client.get_manifest(repo, "9.0") is None   # dry run pushed nothing

    p = run_cli("assemble", "-c", cfg, repo, "9.0")
    assert p.returncode == 0 and "published" in p.stderr, p.stderr
    raw = skopeo.inspect_raw_bytes(ref(env, repo, "9.0"))
    assert raw == dry_bytes   # the dry run printed exactly the bytes that were pushed
    p = run_cli("assemble", "-c", cfg, repo, "9.0")
    assert p.returncode == 0 and "unchanged" in p.stderr, p.stderr

    assert run_cli("--help").returncode == 0
    assert run_cli("--version").stdout.startswith("archmerge ")
    assert run_cli("frobnicate").returncode == 2


@pytest.mark.parametrize("label, server, heads", [("default", {}, 3), ("single", {"single_writer": True}, 1)])
def test_cli_assemble_rechecks_its_sources_unless_single_writer(env, admin_client, archmerge, label, server,
                                                                 heads):
    """Issue 22.2: `archmerge assemble` run by hand beside `serve` is a second writer: after
    its PUT it HEADs both source tags again, unless server.single_writer = true."""
    am = archmerge(archmerge.config(server_extra=server,
                                    extra={"reconcile": {"on_start": False, "interval_s": 0}}))
    cfg = am.config_path
    am.stop()
    repo = f"library/cli-recheck-{label}"
    admin_client.push_image(repo, "1.0-amd64", arch="amd64", salt=repo)
    admin_client.push_image(repo, "1.0-arm64", arch="arm64", salt=repo)
    seen = len(env.registry.access_log(user_agent="archmerge/", pings=False))
    p = run_cli("assemble", "-c", cfg, repo, "1.0")
    assert p.returncode == 0 and "published" in p.stderr, p.stderr
    # (a fresh process learns the token realm from a 401 first: those answers are not counted)
    made = [(m, path) for m, path, st in env.registry.access_log(user_agent="archmerge/", pings=False)[seen:]
            if path.startswith(f"/v2/{repo}/manifests/") and st != 401]
    assert len([1 for m, _ in made if m == "HEAD"]) == heads, made
    assert ("PUT", f"/v2/{repo}/manifests/1.0") in made, made
