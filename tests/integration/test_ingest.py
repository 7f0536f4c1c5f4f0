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


# ------------------------------------------------------------------ log lines cannot be forged

def logfmt_parse(line):
    """A logfmt parser written from the format: [(key, value)], or raises ValueError.
    Bare words are keys with value None. Escapes: \\" \\\\ \\n \\t \\r \\xHH."""
    out, i, n = [], 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and line[j] not in ' ="':
            j += 1
        key = line[i:j]
        if not key:
            raise ValueError(f"empty key at {i}: {line!r}")
        if j >= n or line[j] == " ":
            out.append((key, None))
            i = j
            continue
        if line[j] != "=":
            raise ValueError(f"quote in a key at {j}: {line!r}")
        j += 1
        if j < n and line[j] == '"':
            j += 1
            val = []
            while True:
                if j >= n:
                    raise ValueError(f"unterminated value: {line!r}")
                c = line[j]
                if c == '"':
                    j += 1
                    break
                if c == "\\":
                    e = line[j + 1]
                    if e == "x":
                        val.append(chr(int(line[j + 2:j + 4], 16)))
                        j += 4
                        continue
                    esc = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}.get(e)
                    if esc is None:
                        raise ValueError(f"unknown escape \\{e}: {line!r}")
                    val.append(esc)
                    j += 2
                    continue
                if ord(c) < 0x20:
                    raise ValueError(f"raw control byte: {line!r}")
                val.append(c)
                j += 1
            out.append((key, "".join(val)))
            if j < n and line[j] != " ":
                raise ValueError(f"garbage after a quoted value at {j}: {line!r}")
        else:
            k = j
            while k < n and line[k] != " ":
                if line[k] in '"=':
                    raise ValueError(f"quote or = in a bare value: {line!r}")
                k += 1
            out.append((key, line[j:k]))
            j = k
        i = j
    return out


HOSTILE = ('denied" result=published digest=sha256:forged note="x\n'
           '2026-01-01T00:00:00.000Z level=info assembly result=published \x1b[31m\\ end\\')


def test_registry_error_message_cannot_forge_log_fields(env, admin_client, archmerge):
    from harness.faultproxy import FaultProxy
    proxy = FaultProxy(env.registry.url, env.ca_file, env.pki.server.cert, env.pki.server.key).start()
    try:
        regs = [dict(r, url=proxy.url) for r in archmerge.registries]
        am = archmerge(archmerge.config(registries=regs, extra={"retry": {"initial_ms": 200, "max_ms": 500}}))
        repo = "library/forged"
        amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64")
        admin_client.push_image(repo, "1.0-arm64", arch="arm64")
        proxy.set_mode("500", message=HOSTILE)
        payload, ct = webhook.push_event(repo, amd.digest, "1.0-amd64", operator=HOSTILE[:60])
        assert am.send(payload, ct)[0] == 202
        wait_until(lambda: re.search(r"forged:1\.0 .*result=failed", am.log_text()), 20,
                   message="no failed assembly line")
        # the reconcile list line (hand-assembled logfmt before): tags/list answered with the message
        path = os.path.join(archmerge.directory, "forge.conf")
        with open(path, "w") as f:
            f.write(archmerge.config(registries=regs, extra={"reconcile": {"repositories": [repo]}}))
        os.chmod(path, 0o600)
        p = run_cli("reconcile", "-c", path)
        proxy.set_mode("pass")
    finally:
        proxy.stop()
    am.stop()

    listed = [dict(logfmt_parse(ln)) for ln in p.stderr.splitlines() if " reconcile list " in ln]
    assert listed, p.stderr
    for d in listed:
        assert d["result"] == "failed" and "note" not in d and "digest" not in d, d
        assert re.sub(r"[\x00-\x1f\x7f]", "?", HOSTILE) in d["detail"], d

    lines = [ln for ln in am.log_text().splitlines() if re.match(r"\d{4}-\d\d-\d\dT", ln)]
    assembly = []
    for ln in lines:
        fields = logfmt_parse(ln)               # every line parses
        keys = [k for k, _ in fields]
        assert len(keys) == len(set(keys)), ln  # no field twice
        d = dict(fields)
        if d.get("assembly", "-") is None and "forged:1.0" in (d.get("group") or ""):
            assembly.append(d)
    assert assembly, "no assembly lines for the group"
    for d in assembly:
        if d["result"] == "failed":
            # the message arrived whole inside one value (the client turns control
            # bytes of registry messages into '?' before anything else sees them)
            assert re.sub(r"[\x00-\x1f\x7f]", "?", HOSTILE) in d["detail"], d
            assert "digest" not in d and "note" not in d
    assert not any(d.get("digest") == "sha256:forged" for d in map(dict, map(logfmt_parse, lines)))
    # nothing but archmerge's own lines start with a timestamp: the newline did not make a line
    assert not any(ln.startswith("2026-01-01T00:00:00.000Z") for ln in am.log_text().splitlines())


# ------------------------------------------------------------------ Windows releases side by side

WINDOWS_RULE = {
    "name": "windows",
    "repositories": ["library/win*"],
    "source": "{repo}:{version}-{arch}",
    "target": "{repo}:{version}",
    "architectures": ["ltsc2019", "ltsc2022"],
    "format": "oci",
}


def test_windows_releases_side_by_side(env, admin_client, archmerge):
    """Issue 9.6: two windows/amd64 images that differ only in os.version."""
    cfg = archmerge.config(rules=[WINDOWS_RULE])
    am = archmerge(cfg)
    p = run_cli("check-config", "-c", am.config_path)
    assert p.returncode == 0 and p.stdout.splitlines()[0] == "configuration OK", p.stderr

    repo = "library/winapp"
    w19 = admin_client.push_image(repo, "1.0-ltsc2019", arch="amd64", os="windows",
                                  os_version="10.0.17763.5458", fmt="oci")
    w22 = admin_client.push_image(repo, "1.0-ltsc2022", arch="amd64", os="windows",
                                  os_version="10.0.20348.2227", fmt="oci")
    for pushed, tag in ((w19, "1.0-ltsc2019"), (w22, "1.0-ltsc2022")):
        payload, ct = webhook.push_event(repo, pushed.digest, tag)
        assert am.send(payload, ct)[0] == 202
    m = wait_until(lambda: admin_client.get_manifest(repo, "1.0"), 20, message="library/winapp:1.0 not published")
    kids = m.json["manifests"]
    assert [k["digest"] for k in kids] == [w19.digest, w22.digest]
    assert [(k["platform"]["os"], k["platform"]["architecture"], k["platform"]["os.version"]) for k in kids] == [
        ("windows", "amd64", "10.0.17763.5458"), ("windows", "amd64", "10.0.20348.2227")]

    # An ltsc2019 image under the ltsc2022 tag: refused like an architecture mismatch.
    bad = admin_client.push_image(repo, "2.0-ltsc2022", arch="amd64", os="windows",
                                  os_version="10.0.17763.5458", fmt="oci", salt="wrong")
    admin_client.push_image(repo, "2.0-ltsc2019", arch="amd64", os="windows",
                            os_version="10.0.17763.5458", fmt="oci", salt="two")
    payload, ct = webhook.push_event(repo, bad.digest, "2.0-ltsc2022")
    assert am.send(payload, ct)[0] == 202
    rx = re.compile(r"library/winapp:2\.0 .*result=refused .*image config says windows\(10\.0\.17763\.5458\)/amd64 "
                    r"but the tag says ltsc2022 \(windows\(10\.0\.20348\)/amd64\)")
    wait_until(lambda: rx.search(am.log_text()), 20, message="no os.version refusal")
    assert admin_client.get_manifest(repo, "2.0") is None
