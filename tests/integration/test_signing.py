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


# ------------------------------------------------------------ signed children

def sigstore_keypair(directory, name, passphrase=b"test-passphrase"):
    """A key in the encrypted format skopeo 1.9 reads for --sign-by-sigstore-private-key
    (sigstore's: PEM "ENCRYPTED SIGSTORE PRIVATE KEY" around JSON with scrypt + nacl/secretbox
    over the PKCS#8 DER key), the public key as PEM, and the passphrase file."""
    import nacl.secret
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    k = ec.generate_private_key(ec.SECP256R1())
    der = k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    salt, nonce, n, r, p = os.urandom(32), os.urandom(24), 32768, 8, 1
    box_key = hashlib.scrypt(passphrase, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=64 * 1024 * 1024)
    doc = {"kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": base64.b64encode(salt).decode()},
           "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
           "ciphertext": base64.b64encode(nacl.secret.SecretBox(box_key).encrypt(der, nonce).ciphertext).decode()}
    key, pub, pw = (os.path.join(directory, name + s) for s in (".key", ".pub", ".pass"))
    with open(key, "w") as f:
        f.write("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" +
                base64.encodebytes(json.dumps(doc).encode()).decode() +
                "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    with open(pub, "wb") as f:
        f.write(k.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo))
    with open(pw, "wb") as f:
        f.write(passphrase)
    return key, pub, pw


def load_sigstore_key(key, pw):
    """Decrypt the key file sigstore_keypair wrote (the format skopeo reads)."""
    import nacl.secret
    from cryptography.hazmat.primitives import serialization
    with open(key) as f:
        body = "".join(l for l in f if not l.startswith("-----"))
    doc = json.loads(base64.b64decode(body))
    prm = doc["kdf"]["params"]
    with open(pw, "rb") as f:
        box_key = hashlib.scrypt(f.read(), salt=base64.b64decode(doc["kdf"]["salt"]), n=prm["N"], r=prm["r"],
                                 p=prm["p"], dklen=32, maxmem=64 * 1024 * 1024)
    der = nacl.secret.SecretBox(box_key).decrypt(base64.b64decode(doc["ciphertext"]),
                                                 base64.b64decode(doc["cipher"]["nonce"]))
    return serialization.load_der_private_key(der, None)


def cosign_sign(client, repo, tag, reference, key, pw):
    """Append a signature of repo:tag's digest in cosign's layout, independent of archmerge."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    digest = client.get_manifest(repo, tag).digest
    payload = json.dumps({"critical": {"identity": {"docker-reference": reference},
                                       "image": {"docker-manifest-digest": digest},
                                       "type": "cosign container image signature"}, "optional": None},
                         separators=(",", ":"), sort_keys=True).encode()
    sig = load_sigstore_key(key, pw).sign(payload, ec.ECDSA(hashes.SHA256()))
    old = client.get_manifest(repo, sig_tag(digest))
    layers = json.loads(old.body)["layers"] if old is not None else []
    layers.append({"mediaType": COSIGN_LAYER, "size": len(payload), "digest": client.push_blob(repo, payload),
                   "annotations": {SIG_ANN: base64.b64encode(sig).decode()}})
    cfg = json.dumps({"architecture": "", "created": "0001-01-01T00:00:00Z",
                      "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                      "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]},
                      "config": {}}).encode()
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(cfg),
                      "digest": client.push_blob(repo, cfg)}, "layers": layers}
    client.put_manifest(repo, sig_tag(digest), json.dumps(man).encode(), man["mediaType"])


class SkopeoSigner:
    """skopeo copy onto itself, signing sigstore-style into sha256-<hex>.sig attachments."""

    def __init__(self, env, skopeo, client, directory):
        self.env, self.skopeo, self.client, self.dir = env, skopeo, client, directory
        self.regd = os.path.join(directory, "registries.d")
        os.makedirs(self.regd, exist_ok=True)
        with open(os.path.join(self.regd, "default.yaml"), "w") as f:
            f.write("default-docker:\n  use-sigstore-attachments: true\n")

    def _run(self, argv):
        p = subprocess.run(argv, capture_output=True, env=self.skopeo.env, timeout=120)
        return p.returncode, p.stderr.decode(errors="replace")

    def sign(self, repo, tag, key, pw):
        """skopeo first; Debian's 1.9 build refuses ("Debian-local change: sigstore disabled"),
        then cosign's layout is written here with python3-cryptography (see docs/signing.md)."""
        ref = f"docker://{self.env.registry.host}/{repo}:{tag}"
        creds = f"{self.skopeo.username}:{self.skopeo.password}"
        rc, err = self._run(["skopeo", "--registries.d", self.regd, "copy", "--preserve-digests",
                             "--sign-by-sigstore-private-key", key, "--sign-passphrase-file", pw,
                             "--src-cert-dir", self.skopeo.cert_dir, "--dest-cert-dir", self.skopeo.cert_dir,
                             "--src-creds", creds, "--dest-creds", creds, ref, ref])
        if rc == 0:
            return "skopeo"
        assert "sigstore disabled" in err, err
        cosign_sign(self.client, repo, tag, f"{self.env.registry.host}/{repo}:{tag}", key, pw)
        return "python3-cryptography"

    def verify(self, repo, tag, pub):
        policy = os.path.join(self.dir, "policy.json")
        with open(policy, "w") as f:
            json.dump({"default": [{"type": "reject"}], "transports": {"docker": {self.env.registry.host: [
                {"type": "sigstoreSigned", "keyPath": pub, "signedIdentity": {"type": "matchRepository"}}]}}}, f)
        out = os.path.join(self.dir, "pulled")
        subprocess.run(["rm", "-rf", out])
        rc, err = self._run(["skopeo", "--policy", policy, "--registries.d", self.regd, "copy"]
                         + ["--src-cert-dir", self.skopeo.cert_dir,
                            "--src-creds", f"{self.skopeo.username}:{self.skopeo.password}"]
                         + [f"docker://{self.env.registry.host}/{repo}:{tag}", f"dir:{out}"])
        if rc == 0 or "sigstore disabled" not in err:
            return rc, err
        # Debian's build cannot verify either: openssl checks every layer instead.
        digest = self.client.get_manifest(repo, tag).digest
        _, _, layers = read_sigs(self.client, repo, digest)
        for l, payload in layers:
            p = json.loads(payload)["critical"]
            if p["image"]["docker-manifest-digest"] == digest and \
                    openssl_verifies(self.dir, pub, payload, l["annotations"][SIG_ANN]):
                return 0, ""
        return 1, f"no layer of {len(layers)} verifies with {pub}"


def test_require_signed_children(env, admin_client, skopeo, archmerge, tmp_path):
    d = str(tmp_path)
    key, pub, pw = sigstore_keypair(d, "ci")
    other_key, other_pub, other_pw = sigstore_keypair(d, "stranger")
    signer = SkopeoSigner(env, skopeo, admin_client, d)
    rule = dict(DEFAULT_RULE, require_signed_children={"public_keys": [pub]})
    am = archmerge(archmerge.config(rules=[rule]))
    repo = "library/signedkids"
    amd = admin_client.push_image(repo, "2.0-amd64", arch="amd64")
    arm = admin_client.push_image(repo, "2.0-arm64", arch="arm64")
    signer.sign(repo, "2.0-amd64", key, pw)
    assert admin_client.get_manifest(repo, "2.0-amd64").digest == amd.digest
    rc, err = signer.verify(repo, "2.0-amd64", pub)
    assert rc == 0, err                                   # skopeo itself accepts the signed child
    rc, _ = signer.verify(repo, "2.0-arm64", pub)
    assert rc != 0                                        # ... and refuses the unsigned one

    # Unsigned arm64: refused, naming it; nothing published.
    assert hook(am, repo, amd, "2.0-amd64")[0] == 202
    assert hook(am, repo, arm, "2.0-arm64")[0] == 202
    wait_log(am, r"result=refused .*arm64 child library/signedkids:2\.0-arm64 is not signed")
    assert admin_client.get_manifest(repo, "2.0") is None

    # Signed by a key not in public_keys: still refused (its .sig push re-triggers the group).
    signer.sign(repo, "2.0-arm64", other_key, other_pw)
    n = am.log_text().count("result=refused")
    sig = admin_client.get_manifest(repo, sig_tag(arm.digest))
    status, body = hook(am, repo, sig, sig_tag(arm.digest))
    assert status == 202, body
    wait_until(lambda: am.log_text().count("result=refused") > n, 20, message="not re-run")
    assert admin_client.get_manifest(repo, "2.0") is None

    # Signed by the CI key: the .sig push alone publishes it, no image push.
    signer.sign(repo, "2.0-arm64", key, pw)
    rc, err = signer.verify(repo, "2.0-arm64", pub)
    assert rc == 0, err
    sig = admin_client.get_manifest(repo, sig_tag(arm.digest))
    assert hook(am, repo, sig, sig_tag(arm.digest))[0] == 202
    m = wait_until(lambda: admin_client.get_manifest(repo, "2.0"), 20, message="not published")
    assert [c["digest"] for c in json.loads(m.body)["manifests"]] == [amd.digest, arm.digest]
    wait_until(lambda: json.loads(get_text(am.url + "/status", env.ca_file))["counts"]["unsigned_child_refusals"] >= 2,
               10, message="unsigned_child_refusals stayed below 2")
    wait_until(lambda: re.search(r"^archmerge_unsigned_child_refusals_total [1-9]",
                                 get_text(am.url + "/metrics", env.ca_file), re.M), 10)


def test_reconcile_repairs_missing_index_signature(env, admin_client, archmerge, tmp_path):
    key, pub = keypair(str(tmp_path), "archmerge")
    repo = "library/signrepair"
    admin_client.push_image(repo, "3.0-amd64", arch="amd64")
    admin_client.push_image(repo, "3.0-arm64", arch="arm64")
    # Published without signing (as by an archmerge before sign was configured).
    rec = {"reconcile": {"repositories": [repo], "on_start": True}}
    am = archmerge(archmerge.config(rules=[DEFAULT_RULE], extra=rec))
    index = wait_until(lambda: admin_client.get_manifest(repo, "3.0"), 30, message="reconcile did not publish")
    am.stop()
    assert admin_client.get_manifest(repo, sig_tag(index.digest)) is None
    # Now with a key: the start-up reconcile pass finds the index unchanged and signs it.
    am = archmerge(archmerge.config(rules=[signing_rule(key)], extra=rec))
    doc = wait_until(lambda: read_sigs(admin_client, repo, index.digest)[0], 30, message="signature not repaired")
    _, config, layers = read_sigs(admin_client, repo, index.digest)
    check_structure(doc, config, layers, index.digest, f"{env.harbor_host}/{repo}")
    assert openssl_verifies(str(tmp_path), pub, layers[0][1], layers[0][0]["annotations"][SIG_ANN])
    assert admin_client.get_manifest(repo, "3.0").digest == index.digest
    # Metrics and /status count it (once the signature's PUT has returned: wait).
    wait_until(lambda: re.search(r"^archmerge_signatures_total 1$", get_text(am.url + "/metrics", env.ca_file), re.M),
               10, message="archmerge_signatures_total never 1")
    counts = json.loads(get_text(am.url + "/status", env.ca_file))["counts"]
    assert counts["signatures"] == 1 and counts["unsigned_child_refusals"] == 0


def test_unchanged_index_of_unsigned_children_is_not_signed(env, admin_client, archmerge, tmp_path):
    """Issue 22 §4: an index published before require_signed_children was
    turned on (or pushed by anyone: it is deterministic) takes the unchanged
    path; that path checks the children before it signs, as a publish does."""
    key, pub = keypair(str(tmp_path), "archmerge")
    ci_key, ci_pub = keypair(str(tmp_path), "ci")
    repo = "library/signlate"
    admin_client.push_image(repo, "4.0-amd64", arch="amd64")
    admin_client.push_image(repo, "4.0-arm64", arch="arm64")
    rec = {"reconcile": {"repositories": [repo], "on_start": True}}
    am = archmerge(archmerge.config(rules=[DEFAULT_RULE], extra=rec))
    index = wait_until(lambda: admin_client.get_manifest(repo, "4.0"), 30, message="reconcile did not publish")
    am.stop()
    # The policy and the index key turned on together; the children carry no signature.
    strict = signing_rule(key, require_signed_children={"public_keys": [ci_pub]})
    am = archmerge(archmerge.config(rules=[strict], extra=rec))
    wait_log(am, r"result=refused .*amd64 child library/signlate:4\.0-amd64 is not signed", timeout=30)
    assert admin_client.get_manifest(repo, sig_tag(index.digest)) is None
    assert admin_client.get_manifest(repo, "4.0").digest == index.digest
    assert "result=unchanged" not in am.log_text()


def get_text(url, cafile):
    r = webhook.request(url, None, None, None, cafile, method="GET")
    assert r.status == 200
    return r.body.decode()
