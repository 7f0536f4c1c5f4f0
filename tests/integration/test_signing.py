"""Signed indexes (issue 13): archmerge signs what it publishes in cosign's
layout, and with require_signed_children refuses children without a valid
signature. Everything is checked independently of archmerge's code: the
registry is read with the test client, signatures with `openssl dgst`,
children are signed (and verified) by skopeo."""

import base64
import hashlib
import json
import os
import re
import subprocess

from harness import webhook
from harness.archmerge import DEFAULT_RULE
from harness.util import wait_until

COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ANN = "dev.cosignproject.cosign/signature"


def keypair(directory, name):
    key, pub = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".pub")
    subprocess.run(["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", key], check=True)
    os.chmod(key, 0o600)
    subprocess.run(["openssl", "ec", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
    return key, pub


def sig_tag(digest):
    return "sha256-" + digest.split(":", 1)[1] + ".sig"


def hook(am, repo, pushed, tag):
    payload, ct = webhook.push_event(repo, pushed.digest, tag)
    return am.send(payload, ct)


def wait_log(am, pattern, timeout=20):
    rx = re.compile(pattern)
    return wait_until(lambda: rx.search(am.log_text()), timeout, message=f"log never matched {pattern!r}")


def read_sigs(client, repo, digest):
    """The .sig manifest as stored, its config and its layers with their payloads."""
    m = client.get_manifest(repo, sig_tag(digest))
    if m is None:
        return None, None, []
    doc = json.loads(m.body)
    config = json.loads(client.get_blob(repo, doc["config"]["digest"]))
    layers = [(l, client.get_blob(repo, l["digest"])) for l in doc["layers"]]
    return doc, config, layers


def openssl_verifies(tmp, pub, payload, sig_b64):
    p, s = os.path.join(tmp, "payload"), os.path.join(tmp, "sig")
    with open(p, "wb") as f:
        f.write(payload)
    with open(s, "wb") as f:
        f.write(base64.b64decode(sig_b64))
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", s, p], capture_output=True)
    return r.returncode == 0


def check_structure(doc, config, layers, digest, reference):
    assert doc["schemaVersion"] == 2
    assert doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert doc["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert config["rootfs"] == {"type": "layers", "diff_ids": [l["digest"] for l, _ in layers]}
    for l, payload in layers:
        assert l["mediaType"] == COSIGN_LAYER
        assert l["size"] == len(payload) and l["digest"] == "sha256:" + hashlib.sha256(payload).hexdigest()
        assert SIG_ANN in l["annotations"]
    for _, payload in layers:
        p = json.loads(payload)
        assert p["critical"]["type"] == "cosign container image signature"
        assert p["critical"]["image"]["docker-manifest-digest"] == digest
        assert p["critical"]["identity"]["docker-reference"] == reference


def signing_rule(key_file, **extra):
    return dict(DEFAULT_RULE, sign={"key_file": key_file}, **extra)


def test_index_signed_idempotent_appends_and_follows_republish(env, admin_client, archmerge, tmp_path):
    key, pub = keypair(str(tmp_path), "archmerge")
    other_key, other_pub = keypair(str(tmp_path), "other")
    am = archmerge(archmerge.config(rules=[signing_rule(key)]))
    repo = "library/signed"
    amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64")
    arm = admin_client.push_image(repo, "1.0-arm64", arch="arm64")
    assert hook(am, repo, amd, "1.0-amd64")[0] == 202
    assert hook(am, repo, arm, "1.0-arm64")[0] == 202
    wait_log(am, r"result=published .*signed sha256:")
    index = admin_client.get_manifest(repo, "1.0")
    doc, config, layers = read_sigs(admin_client, repo, index.digest)
    assert doc is not None and len(layers) == 1
    check_structure(doc, config, layers, index.digest, f"{env.harbor_host}/{repo}")
    (layer, payload), = layers
    assert openssl_verifies(str(tmp_path), pub, payload, layer["annotations"][SIG_ANN])
    assert not openssl_verifies(str(tmp_path), other_pub, payload, layer["annotations"][SIG_ANN])

    # Another key's signature arrives (written here like cosign does); a re-delivery adds none of ours.
    other_payload = payload
    other_sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", other_key], input=other_payload,
                               capture_output=True, check=True).stdout
    ann = dict(layer["annotations"], **{SIG_ANN: base64.b64encode(other_sig).decode()})
    # Put the other key's signature first and drop ours: archmerge must append and keep it.
    doc["layers"] = [dict(layer, annotations=ann)]
    cfg = dict(config, rootfs={"type": "layers", "diff_ids": [layer["digest"]]})
    cfg_bytes = json.dumps(cfg).encode()
    doc["config"] = {"mediaType": doc["config"]["mediaType"], "size": len(cfg_bytes),
                     "digest": admin_client.push_blob(repo, cfg_bytes)}
    admin_client.put_manifest(repo, sig_tag(index.digest), json.dumps(doc).encode(), doc["mediaType"])
    assert hook(am, repo, amd, "1.0-amd64")[0] == 202
    wait_log(am, r"result=unchanged .*signed sha256:")
    _, _, layers = read_sigs(admin_client, repo, index.digest)
    assert len(layers) == 2
    sigs = [l["annotations"][SIG_ANN] for l, _ in layers]
    assert sigs[0] == base64.b64encode(other_sig).decode()          # kept, first
    assert openssl_verifies(str(tmp_path), other_pub, layers[0][1], sigs[0])
    assert openssl_verifies(str(tmp_path), pub, layers[1][1], sigs[1])
    # Re-delivery: already signed by this key, nothing added.
    n = am.log_text().count("result=unchanged")
    assert hook(am, repo, arm, "1.0-arm64")[0] == 202
    wait_until(lambda: am.log_text().count("result=unchanged") > n, 20, message="no second unchanged run")
    _, _, again = read_sigs(admin_client, repo, index.digest)
    assert len(again) == 2

    # A rebuilt child: the new index digest gets its own signature.
    arm2 = admin_client.push_image(repo, "1.0-arm64", arch="arm64", salt="rebuilt")
    assert hook(am, repo, arm2, "1.0-arm64")[0] == 202
    new = wait_until(lambda: (lambda m: m if m and m.digest != index.digest else None)(
        admin_client.get_manifest(repo, "1.0")), 20, message="not republished")
    wait_until(lambda: read_sigs(admin_client, repo, new.digest)[0], 20, message="new digest unsigned")
    doc, config, layers = read_sigs(admin_client, repo, new.digest)
    check_structure(doc, config, layers, new.digest, f"{env.harbor_host}/{repo}")
    assert openssl_verifies(str(tmp_path), pub, layers[0][1], layers[0][0]["annotations"][SIG_ANN])
