"""Harbor's project policies (issue 21 parts 1 and 2): a read Harbor refuses
with 412 PROJECTPOLICYVIOLATION is "not yet", never a failure. The registry
is the real one behind harness/policyproxy.py, which answers manifest reads
(GET and HEAD) exactly as Harbor's content-trust and vulnerability
middlewares do. Each scenario measures the time from the policy lifting to
the index being in the registry."""

import base64
import hashlib
import json
import os
import re
import subprocess
import threading
import time
import urllib.request

import pytest

from harness import webhook
from harness.archmerge import DEFAULT_RULE, archmerge_bin
from harness.images import RegistryClient, RegistryError
from harness.policyproxy import PolicyProxy
from harness.util import client_tls_context, wait_until

COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TIMINGS = []          # (scenario, seconds from the policy lifting to the index), printed at the end


@pytest.fixture
def proxy(env):
    p = PolicyProxy(env.registry.url, env.ca_file, env.pki.server.cert, env.pki.server.key).start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="module", autouse=True)
def _report_timings():
    yield
    for name, seconds in TIMINGS:
        print(f"\npolicy lifted -> index published: {name}: {seconds:.2f} s")


def start(archmerge, proxy, rule=None):
    regs = [dict(r, url=proxy.url) for r in archmerge.registries]
    return archmerge(archmerge.config(registries=regs, rules=[rule or DEFAULT_RULE]))


def hook(am, repo, digest, tag):
    return am.send(*webhook.push_event(repo, digest, tag))


def scan_completed(am, repo, digest, tag, fmt):
    """Harbor's SCANNING_COMPLETED for repo:tag@digest, in either payload format."""
    if fmt == "cloudevents":
        payload = webhook.cloudevents_payload(repo, digest, tag, event_type="harbor.scan.completed")
        ct = webhook.CT_CLOUDEVENTS
    else:
        payload, ct = webhook.default_payload(repo, digest, tag), webhook.CT_DEFAULT
        payload["type"] = "SCANNING_COMPLETED"
    for r in (payload.get("data") or payload["event_data"])["resources"]:
        r["scan_overview"] = {"application/vnd.security.vulnerability.report; version=1.1":
                              {"scan_status": "Success", "severity": "None"}}
    return am.send(payload, ct)


def status(am, cafile):
    with urllib.request.urlopen(am.url + "/status", context=client_tls_context(cafile), timeout=10) as r:
        return json.loads(r.read())


def waiting_entry(am, cafile, target):
    return next((w for w in status(am, cafile)["waiting"] if w["target"] == target), None)


def wait_log(am, pattern, timeout=20):
    rx = re.compile(pattern)
    return wait_until(lambda: rx.search(am.log_text()), timeout, 0.05, message=f"log never matched {pattern!r}")


def sign(client, repo, digest):
    """What CI's `cosign sign` leaves in the registry: the tag sha256-<hex>.sig, cosign's layout."""
    payload = json.dumps({"critical": {"identity": {"docker-reference": repo},
                                       "image": {"docker-manifest-digest": digest},
                                       "type": "cosign container image signature"},
                          "optional": None}).encode()
    layer = client.push_blob(repo, payload)
    config = json.dumps({"architecture": "", "os": "", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [layer]}}).encode()
    cfg = client.push_blob(repo, config)
    man = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config), "digest": cfg},
           "layers": [{"mediaType": COSIGN_LAYER, "size": len(payload), "digest": layer,
                       "annotations": {"dev.cosignproject.cosign/signature": base64.b64encode(b"ci").decode()}}]}
    body = json.dumps(man).encode()
    tag = "sha256-" + digest.split(":", 1)[1] + ".sig"
    client.put_manifest(repo, tag, body, OCI_MANIFEST)
    return tag, "sha256:" + hashlib.sha256(body).hexdigest()


def keypair(directory):
    key = os.path.join(directory, "archmerge.key")
    subprocess.run(["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", key], check=True)
    os.chmod(key, 0o600)
    return key


def published(client, repo, tag):
    return client.get_manifest(repo, tag)


def test_scan_in_progress_then_clean(env, admin_client, archmerge, proxy):
    """Scan on push + prevent vulnerable images: the children cannot be read while Harbor scans
    them; the group waits (warn, /status, metric), is read again on its own, and publishes within
    seconds of the scans finishing, without any new push."""
    proxy.vulnerability = True
    am = start(archmerge, proxy)
    repo = "library/policy-scan"
    amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64", salt="scan")
    arm = admin_client.push_image(repo, "1.0-arm64", arch="arm64", salt="scan")
    assert hook(am, repo, amd.digest, "1.0-amd64")[0] == 202
    assert hook(am, repo, arm.digest, "1.0-arm64")[0] == 202
    wait_until(lambda: proxy.last_refusal("/manifests/1.0-arm64") and proxy.last_refusal("/manifests/1.0-amd64"),
               10, message="the children were never read")
    time.sleep(1.0)      # both webhooks' runs are over: what follows is a look of archmerge's own

    # The scan runs: read again on the backoff alone (no event), now refused with Harbor's "Running" words.
    proxy.set_scan(amd.digest, "running")
    proxy.set_scan(arm.digest, "running")
    wait_until(lambda: any("Running" in e[3] for e in proxy.refusals), 15,
               message="never read again after the first refusal")
    log = am.wait_log(re.compile(r"level=warn assembly blocked by registry policy .*arch=arm64 policy=vulnerability "
                                 r"source=library/policy-scan:1\.0-arm64 .*without vulnerability scanning"))
    assert "result=failed" not in log
    w = wait_until(lambda: waiting_entry(am, env.ca_file, repo + ":1.0"), 10)
    assert {b["arch"] for b in w["blocked"]} == {"amd64", "arm64"}
    b = next(x for x in w["blocked"] if x["arch"] == "amd64")
    assert b["policy"] == "vulnerability" and b["tag"] == "1.0-amd64" and b["repo"] == repo
    assert b["message"].startswith("current image with") or b["message"].startswith("current image without")
    wait_log(am, r'assembly blocked by registry policy .*current image with \\"Running\\" status', 20)
    assert published(admin_client, repo, "1.0") is None
    # Scans finish clean; Harbor sends SCANNING_COMPLETED for each (CloudEvents here).
    lifted = time.monotonic()
    proxy.set_scan(amd.digest, "clean")
    proxy.set_scan(arm.digest, "clean")
    assert scan_completed(am, repo, amd.digest, "1.0-amd64", "cloudevents")[0] == 202
    assert scan_completed(am, repo, arm.digest, "1.0-arm64", "cloudevents")[0] == 202
    index = wait_until(lambda: published(admin_client, repo, "1.0"), 10, 0.05,
                       message="not published within 10 s of the scans finishing")
    TIMINGS.append(("scan in progress then clean", time.monotonic() - lifted))
    doc = json.loads(index.body)
    assert {d["digest"] for d in doc["manifests"]} == {amd.digest, arm.digest}
    wait_until(lambda: waiting_entry(am, env.ca_file, repo + ":1.0") is None, 10)
    metrics = urllib.request.urlopen(am.url + "/metrics", context=client_tls_context(env.ca_file)).read().decode()
    assert re.search(r'archmerge_policy_blocked_total\{policy="vulnerability"\} [1-9]', metrics)


def test_vulnerable_child_then_allowlisted(env, admin_client, archmerge, proxy):
    """A child above the project's severity stays blocked (and visible, nothing published); once
    the CVEs are allowlisted Harbor rescans and sends SCANNING_COMPLETED: published."""
    proxy.vulnerability = True
    am = start(archmerge, proxy)
    repo = "library/policy-vuln"
    amd = admin_client.push_image(repo, "2.0-amd64", arch="amd64", salt="vuln")
    arm = admin_client.push_image(repo, "2.0-arm64", arch="arm64", salt="vuln")
    proxy.set_scan(amd.digest, "clean")
    proxy.set_scan(arm.digest, ("vulnerable", 3))
    assert hook(am, repo, amd.digest, "2.0-amd64")[0] == 202
    assert hook(am, repo, arm.digest, "2.0-arm64")[0] == 202
    wait_until(lambda: proxy.last_refusal("/manifests/2.0-arm64"), 10, message="arm64 was never read")
    assert "current image with 3 vulnerabilities cannot be pulled" in proxy.refusals[0][3]
    # Not a one-off: still blocked, still visible, a few reads a minute at most, nothing published.
    time.sleep(6)
    reads = [e for e in proxy.requests("/manifests/2.0-arm64") if e[1] == "GET"]
    assert 2 <= len(reads) <= 4, reads                                 # read again, but no hot loop
    w = waiting_entry(am, env.ca_file, repo + ":2.0")
    assert w is not None and "blocked" in w, w and [b["arch"] for b in w["blocked"]] == ["arm64"]
    assert "3 vulnerabilities" in w["blocked"][0]["message"]
    assert [p["arch"] for p in w["present"]] == ["amd64"]
    assert w["checks"] >= 2
    assert published(admin_client, repo, "2.0") is None
    assert "result=failed" not in am.log_text()
    am.wait_log(re.compile(r"level=warn assembly blocked by registry policy .*arch=arm64 policy=vulnerability .*"
                           r"current image with 3 vulnerabilities cannot be pulled"))

    # assemble --dry-run says the same, Harbor's words included.
    cfg = [p for p in os.listdir(archmerge.directory) if p.endswith(".conf")][-1]
    r = subprocess.run([archmerge_bin(), "assemble", "-c", os.path.join(archmerge.directory, cfg), repo, "2.0",
                        "--dry-run"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stderr                                 # waiting
    assert re.search(r"blocked arm64 library/policy-vuln:2.0-arm64 .*policy=vulnerability: current image with "
                     r"3 vulnerabilities", r.stderr), r.stderr

    # The administrator allowlists the CVEs, Harbor rescans and says so (Default format here).
    lifted = time.monotonic()
    proxy.set_scan(arm.digest, "clean")
    assert scan_completed(am, repo, arm.digest, "2.0-arm64", "default")[0] == 202
    index = wait_until(lambda: published(admin_client, repo, "2.0"), 10, 0.05,
                       message="not published after the rescan")
    TIMINGS.append(("vulnerable child allowlisted + SCANNING_COMPLETED", time.monotonic() - lifted))
    assert {d["digest"] for d in json.loads(index.body)["manifests"]} == {amd.digest, arm.digest}


def test_cosign_required_ci_signs_two_seconds_later(env, admin_client, archmerge, proxy, tmp_path):
    """"Cosign signature required" with CI signing each image 2 s after pushing it, archmerge
    signing its index: published, then the index and every child pull by digest through the
    policy (the signature was in place before anything read the index)."""
    proxy.cosign = True
    key = keypair(str(tmp_path))
    am = start(archmerge, proxy, dict(DEFAULT_RULE, sign={"key_file": key}))
    repo = "library/policy-signed"
    signed_at = {}

    def ci(arch):
        img = admin_client.push_image(repo, f"3.0-{arch}", arch=arch, salt="cosign")
        assert hook(am, repo, img.digest, f"3.0-{arch}")[0] == 202
        time.sleep(2)
        tag, sig_digest = sign(admin_client, repo, img.digest)
        signed_at[arch] = time.monotonic()
        assert hook(am, repo, sig_digest, tag)[0] in (200, 202)
        return img

    amd = ci("amd64")
    arm = ci("arm64")
    index = wait_until(lambda: published(admin_client, repo, "3.0"), 10, 0.05, message="not published")
    assert re.search(r"level=warn assembly blocked by registry policy .*policy=cosign .*"
                     r"The image is not signed by cosign\.", am.log_text())
    TIMINGS.append(("cosign required, CI signs 2 s after pushing", time.monotonic() - signed_at["arm64"]))
    assert "result=failed" not in am.log_text()
    wait_log(am, r"result=published .*signed sha256:")

    # A plain client (no cosign User-Agent) pulls by digest through the policy: index, then each child.
    puller = RegistryClient(proxy.url, env.admin_user, env.admin_password, env.ca_file)
    got = puller.get_manifest(repo, index.digest)
    assert got is not None and got.digest == index.digest
    assert puller.get_manifest(repo, "3.0").digest == index.digest
    for d in json.loads(got.body)["manifests"]:
        assert puller.get_manifest(repo, d["digest"]) is not None
    assert {d["digest"] for d in json.loads(got.body)["manifests"]} == {amd.digest, arm.digest}
    # archmerge never read its own index before its signature was written.
    own = [e for e in proxy.refusals if index.digest in e[2] or e[2].endswith("/manifests/3.0")]
    assert own == [], own

    # Nothing signed the index yet, the index exists (a crash between the two writes): the
    # next run writes the same index again and signs it instead of failing for good.
    sig_tag = "sha256-" + index.digest.split(":", 1)[1] + ".sig"
    admin_client.delete_manifest(repo, sig_tag)
    with pytest.raises(RegistryError) as e:
        puller.get_manifest(repo, index.digest)
    assert e.value.status == 412
    assert hook(am, repo, arm.digest, "3.0-arm64")[0] == 202
    wait_until(lambda: admin_client.head_manifest(repo, sig_tag), 15, message="index not signed again")
    assert puller.get_manifest(repo, index.digest).digest == index.digest
    wait_log(am, r"result=published .*target unreadable under the registry's policy .*written again.*signed sha256:")


def test_signature_refused_by_immutability_rule(env, admin_client, archmerge, proxy, tmp_path):
    """An immutability rule covering the index's signature tag: the index stays published, the
    failure names the rule's effect, and the signature write is not retried."""
    repo = "library/policy-immutable"
    first = keypair(str(tmp_path))
    am = start(archmerge, proxy, dict(DEFAULT_RULE, sign={"key_file": first}))
    amd = admin_client.push_image(repo, "4.0-amd64", arch="amd64", salt="imm")
    arm = admin_client.push_image(repo, "4.0-arm64", arch="arm64", salt="imm")
    assert hook(am, repo, amd.digest, "4.0-amd64")[0] == 202
    assert hook(am, repo, arm.digest, "4.0-arm64")[0] == 202
    wait_log(am, r"result=published .*signed sha256:")
    index = admin_client.get_manifest(repo, "4.0")
    am.stop()

    # Another key now, and a rule making every existing tag immutable: appending is refused.
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    am = start(archmerge, proxy, dict(DEFAULT_RULE, sign={"key_file": keypair(str(other_dir))}))
    proxy.immutable = re.compile(r".*")
    n0 = len([e for e in proxy.requests(".sig") if e[1] == "PUT"])
    assert hook(am, repo, arm.digest, "4.0-arm64")[0] == 202
    wait_log(am, r"level=error assembly .*result=failed .*index published but not signed: "
                 r".*sha256-[0-9a-f]{64}\.sig is immutable: a tag immutability rule refuses every write")
    time.sleep(1)        # the start's reconcile pass and the webhook: one attempt each
    n1 = len([e for e in proxy.requests(".sig") if e[1] == "PUT"])
    assert n0 < n1 <= n0 + 2
    time.sleep(4)
    assert len([e for e in proxy.requests(".sig") if e[1] == "PUT"]) == n1   # not retried on its own
    assert admin_client.get_manifest(repo, "4.0").digest == index.digest   # not undone
