"""What archmerge takes in and says (issue 9, points 5 and 7), against the real registry:
things that are not container images under a per-architecture tag are refused
naming the tag, the digest and the cause; text from the registry cannot forge
log fields."""

import json
import os
import re
import subprocess

from harness import images, webhook
from harness.archmerge import archmerge_bin
from harness.util import wait_until

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"


def run_cli(*args, timeout=60):
    return subprocess.run([archmerge_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def push_artifact(client, repo, tag, config_type, config: bytes, layer_type, layer: bytes):
    """An OCI manifest with any config and one layer (a Helm chart, an artifact)."""
    config_digest = client.push_blob(repo, config)
    layer_digest = client.push_blob(repo, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": len(layer)}],
    }
    body = images.serialize(manifest)
    client.put_manifest(repo, tag, body, images.OCI_MANIFEST)
    return images.sha256_digest(body) if hasattr(images, "sha256_digest") else None


def manifest_digest(client, repo, tag):
    return client.get_manifest(repo, tag).digest


def status_json(am):
    r = webhook.request(am.url + "/status", None, None, None, am.cafile, method="GET")
    assert r.status == 200
    return r.data


def test_not_a_container_image_is_refused_naming_tag_digest_and_cause(env, admin_client, archmerge):
    am = archmerge()
    cases = {
        # repo: (what is pushed under 1.0-amd64, the cause the refusal must name)
        "library/helmish": ("helm", "config media type " + HELM_CONFIG),
        "library/artifact": ("empty", "config media type " + EMPTY_CONFIG),
        "library/noos": ("noos", "config missing \"os\""),
    }
    for repo, (kind, _) in cases.items():
        if kind == "helm":
            push_artifact(admin_client, repo, "1.0-amd64", HELM_CONFIG,
                          b'{"name":"app","version":"1.0","apiVersion":"v2"}',
                          "application/vnd.cncf.helm.chart.content.v1.tar+gzip", images.make_layer(repo))
        elif kind == "empty":
            push_artifact(admin_client, repo, "1.0-amd64", EMPTY_CONFIG, b"{}",
                          "application/vnd.example.sbom+json", b'{"sbom":1}')
        else:
            config = images.serialize({"architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": []}})
            push_artifact(admin_client, repo, "1.0-amd64", images.OCI_CONFIG, config,
                          images.OCI_LAYER, images.make_layer(repo))
        admin_client.push_image(repo, "1.0-arm64", arch="arm64")

    expected = {}
    for repo, (_, cause) in cases.items():
        digest = manifest_digest(admin_client, repo, "1.0-amd64")
        expected[repo] = f"{repo}:1.0-amd64 ({digest}) is not a container image: {cause}"
        payload, ct = webhook.push_event(repo, digest, "1.0-amd64")
        assert am.send(payload, ct)[0] == 202

    # the log line
    for repo, text in expected.items():
        rx = re.compile(rf"group=\S+/{re.escape(repo)}:1\.0 .*result=refused .*detail=\"" + re.escape(
            text.replace('"', '\\"')))
        wait_until(lambda: rx.search(am.log_text()), 20, message=f"no refusal line for {repo}")
        assert admin_client.get_manifest(repo, "1.0") is None
    # /status
    failures = status_json(am)["failures"]
    for repo, text in expected.items():
        assert any(f["outcome"] == "refused" and text in f["error"] for f in failures), failures
    am.stop()

    # assemble --dry-run and the reconcile report
    cfg = am.config_path
    for repo, text in expected.items():
        p = run_cli("assemble", "-c", cfg, repo, "1.0", "--dry-run")
        assert p.returncode != 0 and text in p.stderr, p.stderr
    section = {"repositories": list(cases)}
    rc_cfg = archmerge.config(extra={"reconcile": section})
    path = os.path.join(archmerge.directory, "rc.conf")
    with open(path, "w") as f:
        f.write(rc_cfg)
    os.chmod(path, 0o600)
    p = run_cli("reconcile", "-c", path, "--json", "--dry-run")
    report = json.loads(p.stdout)
    details = {g["repository"] if "repository" in g else g["target"].split(":")[0]: g.get("detail", "")
               for g in report["groups"]}
    for repo, text in expected.items():
        assert text in details[repo], report
