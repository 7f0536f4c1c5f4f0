"""End-to-end tests of the source layouts and publishing options (issue 4)
against the real distribution registry with TLS and token auth: architecture
in the repository name (cross-repository mount, streamed copy), other tag
shapes and version_regex, variant tokens, Windows platforms, attestations,
extra tags, index annotations, optional architectures and cleanup.

Real: the registry, the token service, archmerge, skopeo. Stand-ins: the
Harbor REST tag removal (harness/harbor_tags_standin.py, removes the tag from
the real registry's storage) and, in one test, a proxy that strips the mount
parameters the way Harbor does without read access to the source project
(harness/registry_proxy.py)."""

import gzip
import json
import os
import re
import subprocess

import pytest

from harness import images, webhook
from harness.archmerge import archmerge_bin
from harness.harbor_tags_standin import HarborTagsStandin
from harness.registry_proxy import RegistryProxy
from harness.util import sha256_digest, wait_until

OCI_INDEX = images.OCI_INDEX
DOCKER_LIST = images.DOCKER_LIST
UA = "archmerge/"


def rule(**kw):
    r = {"name": kw.pop("name", "sources"), "repositories": ["library/*"],
         "source": "{repo}:{version}-{arch}", "target": "{repo}:{version}",
         "architectures": ["amd64", "arm64"]}
    r.update(kw)
    return r


def start(archmerge, *rules, registries=None):
    kw = {"rules": list(rules)}
    if any(r.get("cleanup") for r in rules):
        kw["server_extra"] = {"single_writer": True}   # cleanup needs the only writer
    if registries is not None:
        kw["registries"] = registries
    return archmerge(archmerge.config(**kw))


def hook(am, repo, pushed, tag, **kw):
    payload, ct = webhook.push_event(repo, pushed.digest, tag, **kw)
    status, body = am.send(payload, ct)
    assert status == 202, body
    return body


def wait_log(am, pattern, timeout=30):
    rx = re.compile(pattern)
    return wait_until(lambda: rx.search(am.log_text()), timeout, message=f"log never matched {pattern!r}")


def wait_index(client, repo, tag, digest_not=None, timeout=30):
    def ready():
        m = client.get_manifest(repo, tag)
        return m if m is not None and m.digest != digest_not else None
    return wait_until(ready, timeout, message=f"{repo}:{tag} was not published")


def platforms(index):
    return [(m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant"))
            for m in index["manifests"] if m["platform"]["os"] != "unknown"]


def digests(index):
    return [m["digest"] for m in index["manifests"]]


def ours(env):
    """(method, path, status) of archmerge's own requests to the registry."""
    return env.registry.access_log(user_agent=UA)


def push_custom(client, repo, tag, *, arch, fmt="oci", layer=None, labels=None, created=None,
                annotations=None, salt=""):
    """An image with a chosen layer, config labels, created and manifest annotations."""
    manifest_type, config_type, layer_type, _ = images.FORMATS[fmt]
    layer = layer if layer is not None else gzip.compress(images.make_layer(f"{arch}/{salt}"), mtime=0)
    config = {"architecture": arch, "os": "linux", "created": created or "2026-01-01T00:00:00Z",
              "config": {"Labels": labels or {}}, "rootfs": {"type": "layers", "diff_ids": []}}
    config_body = images.serialize(config)
    layer_digest = client.push_blob(repo, layer)
    config_digest = client.push_blob(repo, config_body)
    manifest = {"schemaVersion": 2, "mediaType": manifest_type,
                "config": {"mediaType": config_type, "digest": config_digest, "size": len(config_body)},
                "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": len(layer)}]}
    if annotations:
        manifest["annotations"] = annotations
    body = images.serialize(manifest)
    digest = client.put_manifest(repo, tag, body, manifest_type)
    return images.Pushed(repo, tag, digest, len(body), manifest_type, body,
                         platform={"architecture": arch, "os": "linux"}, config_digest=config_digest,
                         layer_digests=[layer_digest])


def run_cli(*args, timeout=30):
    return subprocess.run([archmerge_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


# ------------------------------------------------------------------ {arch} in the repository name

def test_arch_in_repository_name_mounts_blobs_and_copies_children(env, admin_client, skopeo, archmerge):
    am = start(archmerge, rule(source="{repo}-{arch}:{version}", copy_tag="{version}-{arch}"))
    target = "library/java-gdal-local"
    amd = admin_client.push_image(f"{target}-amd64", "3.8.5", arch="amd64", fmt="docker", salt="gdal")
    bx = admin_client.push_buildx_index(f"{target}-arm64", "3.8.5", arch="arm64", salt="gdal")
    env.tokens.reset_counters()
    n0 = len(ours(env))

    body = hook(am, f"{target}-amd64", amd, "3.8.5")
    assert body["groups"] == [f"{env.harbor_host}/{target}:3.8.5"]
    hook(am, f"{target}-arm64", bx.index, "3.8.5")
    m = wait_index(admin_client, target, "3.8.5")
    wait_log(am, r"java-gdal-local:3\.8\.5 .*result=published .*copied 3 manifests into "
                 r"library/java-gdal-local \(6 blobs mounted, 0 uploaded, 2 copy tags\)")
    raw = skopeo.inspect_raw_bytes(f"{env.registry.host}/{target}:3.8.5")
    assert sha256_digest(raw) == m.digest
    index = json.loads(raw)
    assert digests(index) == [amd.digest, bx.image.digest, bx.attestation.digest]
    assert platforms(index) == [("linux", "amd64", None), ("linux", "arm64", None)]
    print(f"\nrepository layout, 2 architectures + 1 attestation: {len(ours(env)) - n0} registry requests, "
          f"{env.tokens.request_count} token fetches (both webhooks)")

    # The children (and the attestation) now live in the target repository, by digest,
    # and carry the copy tags; skopeo reads them there.
    for d in (amd.digest, bx.image.digest, bx.attestation.digest):
        assert admin_client.head_manifest(target, d)["digest"] == d
    assert admin_client.head_manifest(target, "3.8.5-amd64")["digest"] == amd.digest
    assert admin_client.head_manifest(target, "3.8.5-arm64")["digest"] == bx.image.digest
    assert skopeo.inspect(f"{env.registry.host}/{target}@{bx.image.digest}")["mediaType"] == images.OCI_MANIFEST

    # Every blob was mounted (201); not one layer was downloaded by archmerge.
    log = ours(env)
    mounts = [e for e in log if e[0] == "POST" and e[1].startswith(f"/v2/{target}/blobs/uploads/?mount=")]
    assert len(mounts) == 6 and all(e[2] == 201 for e in mounts), mounts
    layers = set(amd.layer_digests + bx.image.layer_digests + bx.attestation.layer_digests)
    assert not [e for e in log if e[0] == "GET" and any(e[1].endswith(f"/blobs/{d}") for d in layers)]
    # One token covered both sides of the mounts: push on the target, pull on the source.
    both = [r for r in env.tokens.requests
            if f"repository:{target}:pull,push" in r.scopes and f"repository:{target}-amd64:pull" in r.scopes]
    assert both and both[0].authenticated

    # The same event again: unchanged, nothing mounted or written.
    n_writes = len([e for e in ours(env) if e[0] in ("POST", "PUT")])
    hook(am, f"{target}-amd64", amd, "3.8.5")
    wait_log(am, r"java-gdal-local:3\.8\.5 .*result=unchanged")
    assert len([e for e in ours(env) if e[0] in ("POST", "PUT")]) == n_writes

    # A copy tag pushed back by someone else is recognised as archmerge's output.
    status, body = am.send(*webhook.push_event(target, amd.digest, "3.8.5-amd64"))
    assert status == 200 and "own" in body["reason"], body   # own write (digest) or own output (tag)


def test_streamed_copy_when_the_registry_declines_the_mount(env, admin_client, archmerge, monkeypatch):
    # Under ASan freed memory sits in the quarantine and counts as resident, so peak
    # RSS would track bytes transferred, not bytes held: measure with it off.
    monkeypatch.setenv("ASAN_OPTIONS", (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0").lstrip(":"))
    proxy = RegistryProxy(env.registry.url, env.ca_file, env.pki.server.cert, env.pki.server.key).start()
    try:
        regs = [dict(archmerge.registries[0], url=proxy.url)]
        am = start(archmerge, rule(source="{repo}/{arch}:{version}"), registries=regs)
        big = os.urandom(24 * 1024 * 1024)          # incompressible 24 MiB layer
        amd = push_custom(admin_client, "library/big/amd64", "1.0", arch="amd64", layer=big)
        arm = push_custom(admin_client, "library/big/arm64", "1.0", arch="arm64")

        def hwm_kib():
            with open(f"/proc/{am.pid}/status") as f:
                return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
        before = hwm_kib()
        hook(am, "library/big/amd64", amd, "1.0")
        hook(am, "library/big/arm64", arm, "1.0")
        wait_index(admin_client, "library/big", "1.0", timeout=60)
        wait_log(am, r"library/big:1\.0 .*result=published .*\(0 blobs mounted, 4 uploaded", timeout=60)
        grown = hwm_kib() - before
        print(f"\npeak RSS growth while copying a 24 MiB layer: {grown} KiB")
        # Streamed through a temporary file: memory does not grow with the layer.
        assert grown < 12 * 1024, f"peak RSS grew by {grown} KiB"

        assert len(proxy.stripped) == 4
        log = ours(env)
        assert ("GET", f"/v2/library/big/amd64/blobs/{amd.layer_digests[0]}", 200) in log
        uploads = [e for e in log if e[0] == "PUT" and e[1].startswith("/v2/library/big/blobs/uploads/")]
        assert len(uploads) == 4 and all(e[2] == 201 for e in uploads)
        assert admin_client.blob_exists("library/big", amd.layer_digests[0])
        assert admin_client.get_blob("library/big", amd.layer_digests[0]) == big
        index = admin_client.get_manifest("library/big", "1.0").json
        assert digests(index) == [amd.digest, arm.digest]
    finally:
        proxy.stop()


# ------------------------------------------------------------------ tag shapes, version_regex, ambiguity

def test_other_tag_shapes_and_version_regex(env, admin_client, archmerge):
    am = start(archmerge,
               rule(name="underscore", repositories=["library/under*"], source="{repo}:{version}_{arch}",
                    version_regex="^[0-9]+\\.[0-9]+\\.[0-9]+$"),
               rule(name="dot", repositories=["library/dot*"], source="{repo}:{version}.{arch}"),
               rule(name="arch first", repositories=["library/first*"], source="{repo}:{arch}-{version}"))
    cases = [("library/under", "2.1.0_{}", "2.1.0"), ("library/dot", "2.1.0.{}", "2.1.0"),
             ("library/first", "{}-2.1.0", "2.1.0")]
    for repo, shape, version in cases:
        for arch in ("amd64", "arm64"):
            tag = shape.format(arch)
            hook(am, repo, admin_client.push_image(repo, tag, arch=arch, salt=repo), tag)
    for repo, shape, version in cases:
        index = wait_index(admin_client, repo, version).json
        assert platforms(index) == [("linux", "amd64", None), ("linux", "arm64", None)]
        assert digests(index) == [admin_client.head_manifest(repo, shape.format(a))["digest"]
                                  for a in ("amd64", "arm64")]

    # A version outside version_regex is not a source tag at all.
    rc = admin_client.push_image("library/under", "2.2.0-rc1_amd64", arch="amd64", salt="rc")
    status, body = am.send(*webhook.push_event("library/under", rc.digest, "2.2.0-rc1_amd64"))
    assert status == 200 and "no rule matches" in body["reason"], body


def test_ambiguous_patterns_are_rejected_at_load(archmerge):
    text = archmerge.config(rules=[
        rule(name="adjacent", source="{repo}:{version}{arch}"),
        rule(name="suffix", source="{repo}:{version}_{arch}", optional=["linux_amd64"],
             platforms={"linux_amd64": "linux/amd64/v2"}),
        rule(name="same platform", architectures=["amd64", "x86_64"]),
    ])
    path = os.path.join(archmerge.directory, "ambiguous.conf")
    with open(path, "w") as f:
        f.write(text)
    p = run_cli("check-config", "-c", path)
    assert p.returncode == 1
    assert "rules[0].source: template \"{repo}:{version}{arch}\" is ambiguous" in p.stderr
    assert ("rules[1]: source \"{repo}:{version}_{arch}\" is ambiguous: \"1.0_linux_amd64\" reads as "
            "version \"1.0\" with architecture linux_amd64 and as version \"1.0_linux\" with "
            "architecture amd64") in p.stderr
    assert "rules[2]: architectures \"amd64\" and \"x86_64\" both stand for linux/amd64" in p.stderr
    assert all(re.match(r"^\S+:\d+: ", line) for line in p.stderr.strip().splitlines()), p.stderr


# ------------------------------------------------------------------ variants, Windows, duplicates

def test_variant_tokens_windows_and_duplicate_platforms(env, admin_client, skopeo, archmerge):
    am = start(archmerge,
               rule(name="variants", repositories=["library/variants"],
                    architectures=["x86_64", "arm64v8", "armhf", "amd64v3"]),
               rule(name="windows", repositories=["library/win"], architectures=["amd64", "win"],
                    platforms={"win": "windows/amd64"}),
               rule(name="dup", repositories=["library/dup"], architectures=["amd64", "amd64v3"]))
    repo = "library/variants"
    pushes = [("x86_64", dict(arch="x86_64")), ("arm64v8", dict(arch="aarch64", variant="v8")),
              ("armhf", dict(arch="arm")), ("amd64v3", dict(arch="amd64", variant="v3"))]
    for tok, kw in pushes:
        hook(am, repo, admin_client.push_image(repo, f"1.0-{tok}", salt=tok, **kw), f"1.0-{tok}")
    wait_index(admin_client, repo, "1.0")
    index = json.loads(skopeo.inspect_raw_bytes(f"{env.registry.host}/{repo}:1.0"))
    # Always the image config's platform, normalised, in the rule's order.
    assert platforms(index) == [("linux", "amd64", None), ("linux", "arm64", None), ("linux", "arm", "v7"),
                                ("linux", "amd64", "v3")]

    repo = "library/win"
    lin = admin_client.push_image(repo, "ltsc-amd64", arch="amd64", salt="w")
    win = admin_client.push_image(repo, "ltsc-win", arch="amd64", os="windows", os_version="10.0.17763.5122",
                                  os_features=["win32k"], salt="w")
    hook(am, repo, lin, "ltsc-amd64")
    hook(am, repo, win, "ltsc-win")
    index = wait_index(admin_client, repo, "ltsc").json
    assert index["manifests"][1]["platform"] == {"architecture": "amd64", "os": "windows",
                                                 "os.version": "10.0.17763.5122", "os.features": ["win32k"]}

    repo = "library/dup"
    a = admin_client.push_image(repo, "1-amd64", arch="amd64", variant="v3", salt="d1")
    b = admin_client.push_image(repo, "1-amd64v3", arch="amd64", variant="v3", salt="d2")
    hook(am, repo, a, "1-amd64")
    hook(am, repo, b, "1-amd64v3")
    wait_log(am, r"library/dup:1 .*result=refused .*two children have the same platform linux/amd64/v3")
    assert admin_client.get_manifest(repo, "1") is None


# ------------------------------------------------------------------ attestations

def test_attestations_kept_after_images_and_never_in_a_docker_list(env, admin_client, archmerge):
    am = start(archmerge, rule(name="keep", repositories=["library/att-keep"]),
               rule(name="drop", repositories=["library/att-drop"], keep_attestations=False))
    for repo in ("library/att-keep", "library/att-drop"):
        bxs = {a: admin_client.push_buildx_index(repo, f"1.0-{a}", arch=a, fmt="docker", salt=repo)
               for a in ("amd64", "arm64")}
        for a, bx in bxs.items():
            hook(am, repo, bx.index, f"1.0-{a}")
        m = wait_index(admin_client, repo, "1.0")
        if repo.endswith("keep"):
            # Docker image manifests, but with attestations kept the output is an OCI index.
            assert m.content_type == OCI_INDEX
            assert digests(m.json) == [bxs["amd64"].image.digest, bxs["arm64"].image.digest,
                                       bxs["amd64"].attestation.digest, bxs["arm64"].attestation.digest]
            for d, bx in zip(m.json["manifests"][2:], bxs.values()):
                assert d["annotations"] == {"vnd.docker.reference.digest": bx.image.digest,
                                            "vnd.docker.reference.type": "attestation-manifest"}
                assert d["platform"] == {"architecture": "unknown", "os": "unknown"}
        else:
            assert m.content_type == DOCKER_LIST
            assert digests(m.json) == [bxs["amd64"].image.digest, bxs["arm64"].image.digest]
            assert b"annotations" not in m.body


# ------------------------------------------------------------------ extra tags

def test_extra_tags_published_once_each_and_skipped_when_current(env, admin_client, archmerge):
    am = start(archmerge, rule(repositories=["library/extra"], version_regex="^([0-9]+)\\.([0-9]+)\\.([0-9]+)$",
                               version_groups=["major", "minor"], extra_tags=["latest", "{major}.{minor}"]))
    repo = "library/extra"

    def puts(tag):
        return [e for e in ours(env) if e[0] == "PUT" and e[1] == f"/v2/{repo}/manifests/{tag}"]

    for a in ("amd64", "arm64"):
        hook(am, repo, admin_client.push_image(repo, f"2.4.1-{a}", arch=a, salt="e1"), f"2.4.1-{a}")
    m = wait_index(admin_client, repo, "2.4.1")
    wait_log(am, r"library/extra:2\.4\.1 .*result=published .*extra tags latest,2\.4")
    for tag in ("latest", "2.4"):
        assert admin_client.head_manifest(repo, tag)["digest"] == m.digest
        assert len(puts(tag)) == 1
    # Extra tags go before the target tag: the target is the last write.
    writes = [e[1] for e in ours(env) if e[0] == "PUT" and e[1].startswith(f"/v2/{repo}/manifests/")]
    assert writes[-1] == f"/v2/{repo}/manifests/2.4.1"

    hook(am, repo, admin_client.push_image(repo, "2.4.1-amd64", arch="amd64", salt="e1"), "2.4.1-amd64")
    wait_log(am, r"library/extra:2\.4\.1 .*result=unchanged")
    assert len(puts("latest")) == 1 and len(puts("2.4")) == 1 and len(puts("2.4.1")) == 1

    for a in ("amd64", "arm64"):
        hook(am, repo, admin_client.push_image(repo, f"2.4.2-{a}", arch=a, salt="e2"), f"2.4.2-{a}")
    m2 = wait_index(admin_client, repo, "2.4.2")
    wait_log(am, r"library/extra:2\.4\.2 .*result=published")
    assert admin_client.head_manifest(repo, "latest")["digest"] == m2.digest
    assert admin_client.head_manifest(repo, "2.4")["digest"] == m2.digest


# ------------------------------------------------------------------ index annotations

def test_index_annotations_and_unchanged_group_not_pushed_again(env, admin_client, skopeo, archmerge):
    am = start(archmerge, rule(repositories=["library/annotated"], created_annotation=True,
                               inherit_annotations=True,
                               annotations=["org.opencontainers.image.vendor=Example Inc.",
                                            "org.opencontainers.image.version={version}"]))
    repo = "library/annotated"
    src = "https://git.example.com/annotated"
    amd = push_custom(admin_client, repo, "7.1-amd64", arch="amd64", fmt="docker",
                      labels={"org.opencontainers.image.source": src, "org.opencontainers.image.revision": "abc"},
                      created="2026-03-01T12:00:00+01:00")
    arm = push_custom(admin_client, repo, "7.1-arm64", arch="arm64", fmt="docker",
                      annotations={"org.opencontainers.image.source": src},
                      labels={"org.opencontainers.image.revision": "def"}, created="2026-03-01T11:30:00Z")
    hook(am, repo, amd, "7.1-amd64")
    hook(am, repo, arm, "7.1-arm64")
    m = wait_index(admin_client, repo, "7.1")
    # Docker children, but annotations only exist in an OCI index.
    assert m.content_type == OCI_INDEX
    ann = json.loads(skopeo.inspect_raw_bytes(f"{env.registry.host}/{repo}:7.1"))["annotations"]
    assert ann == {"org.opencontainers.image.created": "2026-03-01T11:30:00Z",   # 12:00+01:00 is older
                   "org.opencontainers.image.source": src,                        # both agree
                   "org.opencontainers.image.vendor": "Example Inc.",
                   "org.opencontainers.image.version": "7.1"}                     # revisions differ: none

    def target_puts():
        return [e for e in ours(env) if e[0] == "PUT" and e[1] == f"/v2/{repo}/manifests/7.1"]
    assert len(target_puts()) == 1
    hook(am, repo, arm, "7.1-arm64")
    wait_log(am, r"library/annotated:7\.1 .*result=unchanged digest=" + re.escape(m.digest))
    assert len(target_puts()) == 1


# ------------------------------------------------------------------ optional architectures

def test_optional_architecture_included_when_it_arrives(env, admin_client, archmerge):
    am = start(archmerge, rule(repositories=["library/opt"], optional=["s390x"]))
    repo = "library/opt"
    pushed = {"amd64": admin_client.push_image(repo, "3.0-amd64", arch="amd64", salt="o")}
    hook(am, repo, pushed["amd64"], "3.0-amd64")
    wait_log(am, r"library/opt:3\.0 .*result=waiting .*detail=\"missing arm64\"")
    pushed["arm64"] = admin_client.push_image(repo, "3.0-arm64", arch="arm64", salt="o")
    hook(am, repo, pushed["arm64"], "3.0-arm64")
    first = wait_index(admin_client, repo, "3.0")
    wait_log(am, r"library/opt:3\.0 .*result=published .*without optional s390x")
    assert digests(first.json) == [pushed["amd64"].digest, pushed["arm64"].digest]

    s390x = admin_client.push_image(repo, "3.0-s390x", arch="s390x", salt="o")
    hook(am, repo, s390x, "3.0-s390x")
    second = wait_index(admin_client, repo, "3.0", digest_not=first.digest)
    assert digests(second.json) == [pushed["amd64"].digest, pushed["arm64"].digest, s390x.digest]
    assert platforms(second.json)[2] == ("linux", "s390x", None)


# ------------------------------------------------------------------ cleanup

@pytest.fixture
def harbor_standin(env):
    s = HarborTagsStandin(env.registry.storage, {env.robot_user: env.robot_password},
                          env.pki.server.cert, env.pki.server.key).start()
    try:
        yield s
    finally:
        s.stop()


def test_cleanup_other_repositories_signed_children_stay_publishable(env, admin_client, archmerge, harbor_standin,
                                                                    tmp_path):
    """Issue 22 §5: children in other repositories, cleanup and
    require_signed_children. After cleanup a child comes from the published
    index; its signature lives in its source repository and is looked up
    there, so a rebuild of the other architecture still publishes."""
    from test_signing import cosign_sign, sigstore_keypair
    key, pub, pw = sigstore_keypair(str(tmp_path), "ci")
    regs = [dict(archmerge.registries[0], harbor_url=harbor_standin.url)]
    am = start(archmerge, rule(repositories=["library/stool"], source="{repo}-{arch}:{version}", cleanup=True,
                               require_signed_children={"public_keys": [pub]}), registries=regs)
    pushed = {}

    def push_signed(arch, salt):
        src = f"library/stool-{arch}"
        pushed[arch] = admin_client.push_image(src, "6", arch=arch, salt=salt)
        cosign_sign(admin_client, src, "6", f"{env.registry.host}/{src}:6", key, pw)

    push_signed("amd64", "s1")
    push_signed("arm64", "s1")
    for arch in ("amd64", "arm64"):
        hook(am, f"library/stool-{arch}", pushed[arch], "6")
    first = wait_index(admin_client, "library/stool", "6")
    wait_log(am, r"library/stool:6 .*result=published .*cleanup removed 2 tags")
    assert "6" not in admin_client.list_tags("library/stool-amd64")
    # arm64 rebuilt and signed: amd64 comes from the published index (its tag is gone),
    # its signature from library/stool-amd64, where it was pushed and signed.
    push_signed("arm64", "s2")
    hook(am, "library/stool-arm64", pushed["arm64"], "6")
    m = wait_index(admin_client, "library/stool", "6", digest_not=first.digest)
    assert digests(m.json) == [pushed["amd64"].digest, pushed["arm64"].digest]
    assert "result=refused" not in am.log_text()



def test_cleanup_removes_per_arch_tags_through_harbor_rest(env, admin_client, skopeo, archmerge, harbor_standin):
    regs = [dict(archmerge.registries[0], harbor_url=harbor_standin.url)]
    am = start(archmerge, rule(repositories=["library/team/*"], optional=["s390x"], cleanup=True),
               rule(name="repo layout", repositories=["library/tool"], source="{repo}-{arch}:{version}",
                    cleanup=True), registries=regs)
    repo = "library/team/app"
    amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64", salt="c")
    bx = admin_client.push_buildx_index(repo, "1.0-arm64", arch="arm64", salt="c")
    hook(am, repo, amd, "1.0-amd64")
    hook(am, repo, bx.index, "1.0-arm64")
    m = wait_index(admin_client, repo, "1.0")
    wait_log(am, r"library/team/app:1\.0 .*result=published .*cleanup removed 2 tags")

    # Harbor saw two tag removals: project plain, the rest encoded twice, the artifact
    # named by the digest each tag pointed at, with the robot's Basic credentials.
    calls = sorted(harbor_standin.calls, key=lambda c: c.tag)
    assert [(c.status, c.user, c.project, c.repository, c.reference, c.tag) for c in calls] == [
        (200, env.robot_user, "library", "team/app", amd.digest, "1.0-amd64"),
        (200, env.robot_user, "library", "team/app", bx.index.digest, "1.0-arm64")]
    assert all("/repositories/team%252Fapp/" in c.raw_path for c in calls)
    assert harbor_standin.other == []                     # never an artifact deletion
    # The real registry no longer lists the per-arch tags; the index and its children still resolve.
    assert admin_client.list_tags(repo) == ["1.0"]
    index = json.loads(skopeo.inspect_raw_bytes(f"{env.registry.host}/{repo}:1.0"))
    assert digests(index) == [amd.digest, bx.image.digest, bx.attestation.digest]
    for d in digests(index):
        assert skopeo.inspect(f"{env.registry.host}/{repo}@{d}")["schemaVersion"] == 2

    # A late duplicate webhook: the tags are gone, the published index vouches for them.
    hook(am, repo, amd, "1.0-amd64")
    wait_log(am, r"library/team/app:1\.0 .*result=unchanged digest=" + re.escape(m.digest))
    # The optional architecture arrives after cleanup: republished with all three, its tag removed.
    s390x = admin_client.push_image(repo, "1.0-s390x", arch="s390x", salt="c")
    hook(am, repo, s390x, "1.0-s390x")
    m2 = wait_index(admin_client, repo, "1.0", digest_not=m.digest)
    assert digests(m2.json) == [amd.digest, bx.image.digest, s390x.digest, bx.attestation.digest]
    wait_log(am, r"library/team/app:1\.0 .*result=published .*cleanup removed 1 tags")
    assert admin_client.list_tags(repo) == ["1.0"]

    # Sources in other repositories: copied in, then their tags removed there.
    ta = admin_client.push_image("library/tool-amd64", "5", arch="amd64", salt="t")
    tb = admin_client.push_image("library/tool-arm64", "5", arch="arm64", salt="t")
    hook(am, "library/tool-amd64", ta, "5")
    hook(am, "library/tool-arm64", tb, "5")
    wait_index(admin_client, "library/tool", "5")
    wait_log(am, r"library/tool:5 .*result=published .*cleanup removed 2 tags")
    assert admin_client.list_tags("library/tool-amd64") == [] and admin_client.list_tags("library/tool-arm64") == []
    assert admin_client.head_manifest("library/tool", ta.digest)["digest"] == ta.digest
    assert sorted(c.repository for c in harbor_standin.calls[-2:]) == ["tool-amd64", "tool-arm64"]
    assert harbor_standin.other == []
