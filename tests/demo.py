#!/usr/bin/python3
"""`make demo`: the main job on a throwaway local setup.

Starts, all on 127.0.0.1 and in a temporary directory: a test CA, a
Harbor-like token service, the CNCF distribution registry (TLS + token auth)
and archmerge. Pushes myapp:3.8.5-amd64 and myapp:3.8.5-arm64 (the arm64 one
as a buildx index with an attestation), sends the two Harbor webhooks and
prints the published index as skopeo sees it. Removes everything at the end.
"""

import json
import os
import secrets
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "integration"))

from harness import pki as pki_mod, webhook  # noqa: E402
from harness.archmerge import ArchmergeFactory  # noqa: E402
from harness.registry import Registry  # noqa: E402
from harness.tokensrv import TokenService  # noqa: E402
from harness.tools import Skopeo  # noqa: E402
from harness.util import wait_until  # noqa: E402

ROBOT = "robot$library+archmerge"


def say(msg):
    print(f"==> {msg}", flush=True)


def main():
    work = tempfile.mkdtemp(prefix="archmerge-demo-")
    os.chmod(work, 0o700)
    tokens = registry = factory = None
    try:
        pki = pki_mod.create_pki(os.path.join(work, "pki"))
        signer = pki.issue("token-signer", server=False, key_kind="rsa")
        users = {ROBOT: secrets.token_urlsafe(18), "ci": secrets.token_urlsafe(18)}
        tokens = TokenService(tls_cert=pki.server.cert, tls_key=pki.server.key, signing_key=signer.key,
                              signing_chain=[signer.cert], users=users, issuer="demo-issuer",
                              service="harbor-registry")
        tokens.start()
        registry = Registry(os.path.join(work, "registry"), tls_cert=pki.server.cert, tls_key=pki.server.key,
                            cafile=pki.ca_cert, token_realm=tokens.realm, token_service="harbor-registry",
                            token_issuer="demo-issuer", token_rootcertbundle=signer.cert)
        registry.start()
        say(f"registry with TLS and token auth at {registry.url}")

        secret = "Bearer " + secrets.token_urlsafe(24)
        factory = ArchmergeFactory(os.path.join(work, "archmerge"), cafile=pki.ca_cert,
                                   certificate=pki.server.cert, private_key=pki.server.key,
                                   registries=[{"host": "harbor.example.com", "url": registry.url,
                                                "ca_file": pki.ca_cert, "username": ROBOT}],
                                   webhook_auth=secret, registry_password=users[ROBOT])
        am = factory()
        say(f"archmerge serving {am.webhook_url}; configuration:")
        with open(am.config_path) as f:
            print("    " + f.read().replace("\n", "\n    "))

        ci = __import__("harness.images", fromlist=["RegistryClient"]).RegistryClient(
            registry.url, "ci", users["ci"], pki.ca_cert)
        repo = "library/myapp"
        amd = ci.push_image(repo, "3.8.5-amd64", arch="amd64", fmt="docker")
        say(f"pushed {repo}:3.8.5-amd64 ({amd.digest[:19]}...)")
        status, body = am.send(*webhook.push_event(repo, amd.digest, "3.8.5-amd64", operator="ci"))
        say(f"webhook for 3.8.5-amd64 -> {status} {json.dumps(body)}")
        time.sleep(0.3)

        arm = ci.push_buildx_index(repo, "3.8.5-arm64", arch="arm64")
        say(f"pushed {repo}:3.8.5-arm64 as a buildx index (image + attestation)")
        status, body = am.send(*webhook.push_event(repo, arm.index.digest, "3.8.5-arm64",
                                                   fmt="cloudevents", operator="ci"))
        say(f"webhook for 3.8.5-arm64 (CloudEvents) -> {status} {json.dumps(body)}")

        wait_until(lambda: ci.get_manifest(repo, "3.8.5"), 15, message="the index was not published")
        say("archmerge log:")
        for line in am.log_text().splitlines():
            print("    " + line)
        skopeo = Skopeo(work, pki.ca_cert, "ci", users["ci"])
        ref = f"{registry.host}/{repo}:3.8.5"
        say(f"skopeo inspect --raw docker://{ref}")
        print(json.dumps(skopeo.inspect(ref), indent=2))
        say("done: one multi-architecture image from two per-architecture tags")
        return 0
    finally:
        if factory is not None:
            factory.stop_all()
        if registry is not None:
            registry.stop()
        if tokens is not None:
            tokens.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
