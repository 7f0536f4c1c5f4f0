"""distribution's own notifications drive archmerge (issue 12, part 1).

A second docker-registry (same test CA, same token service) is started with
`notifications.endpoints` pointing at archmerge over HTTPS; it trusts the
test CA through SSL_CERT_FILE and sends the webhook secret through its
`headers`. Tests only push images: no test code sends a webhook.
"""

import os
import re
import time

from conftest import TOKEN_ISSUER, TOKEN_SERVICE
from harness.images import RegistryClient
from harness.registry import Registry
from harness.util import wait_until


def notifying_registry(env, workdir, webhook_url, *, threshold=3, backoff="1s", cert=None):
    """cert: the registry's server certificate (default: the session's, SAN 127.0.0.1)."""
    cert = cert or env.pki.server
    reg = Registry(workdir, tls_cert=cert.cert, tls_key=cert.key, cafile=env.ca_file,
                   token_realm=env.tokens.realm, token_service=TOKEN_SERVICE, token_issuer=TOKEN_ISSUER,
                   token_rootcertbundle=env.registry.config["auth"]["token"]["rootcertbundle"])
    reg.config["notifications"] = {"endpoints": [{
        "name": "archmerge", "url": webhook_url, "timeout": "3s",
        "threshold": threshold, "backoff": backoff,
        "headers": {"Authorization": [env.webhook_auth]},
        "ignoredmediatypes": ["application/octet-stream"]}]}
    reg.extra_env = {"SSL_CERT_FILE": env.ca_file}
    return reg


def use_registry(factory, reg):
    # The registry is named by its own address: match by url's host:port.
    factory.registries = [dict(r, url=reg.url) for r in factory.registries]


def wait_index(client, repo, tag, timeout=30):
    def ready():
        m = client.get_manifest(repo, tag)
        return m if m is not None and "manifests" in m.json else None
    return wait_until(ready, timeout, 0.2, message=f"{repo}:{tag} not published")


def arches(index):
    return sorted(d["platform"]["architecture"] for d in index.json["manifests"])


def notifications_in(am):
    return len(re.findall(r"type=notification", am.log_text()))


def test_registry_notifications_publish_the_index(env, archmerge, tmp_path):
    webhook_url = f"https://127.0.0.1:{archmerge.port}/hooks/harbor"
    reg = notifying_registry(env, str(tmp_path / "reg"), webhook_url)
    use_registry(archmerge, reg)
    am = archmerge()
    t0 = time.monotonic()
    with reg:
        c = RegistryClient(reg.url, env.admin_user, env.admin_password, env.ca_file)
        a = c.push_image("library/app", "3.8.5-amd64", arch="amd64")
        b = c.push_image("library/app", "3.8.5-arm64", arch="arm64")
        index = wait_index(c, "library/app", "3.8.5")
        assert arches(index) == ["amd64", "arm64"]
        assert {d["digest"] for d in index.json["manifests"]} == {a.digest, b.digest}
        # archmerge's own push of the index comes back as a notification: ignored.
        wait_until(lambda: "own write" in am.log_text() or "it is a target" in am.log_text(), 20, 0.2,
                   message="archmerge's own push was not notified back")
        assert notifications_in(am) >= 3
        # A pull notification (the registry sends those too) is answered 200 and ignored.
        assert "outcome=queued type=notification" in am.log_text()
    print(f"notifications: index published {time.monotonic() - t0:.1f}s after the first push")


def test_registry_retries_while_archmerge_is_down_and_duplicates_are_harmless(env, archmerge, tmp_path):
    webhook_url = f"https://127.0.0.1:{archmerge.port}/hooks/harbor"
    reg = notifying_registry(env, str(tmp_path / "reg"), webhook_url, threshold=2, backoff="1s")
    use_registry(archmerge, reg)
    with reg:
        c = RegistryClient(reg.url, env.admin_user, env.admin_password, env.ca_file)
        c.push_image("library/late", "1.0-amd64", arch="amd64")
        c.push_image("library/late", "1.0-arm64", arch="arm64")
        # archmerge is not running: the registry fails, hits its threshold and backs off.
        wait_until(lambda: re.search(r"retryingsink.*(encountered too many errors|backing off)|"
                                     r"error writing event", reg.log_text(), re.I | re.S), 30, 0.3,
                   message="the registry logged no failed delivery")
        time.sleep(3)
        assert c.get_manifest("library/late", "1.0") is None
        am = archmerge()     # comes up late: the registry's retry delivers the backlog
        index = wait_index(c, "library/late", "1.0", timeout=60)
        assert arches(index) == ["amd64", "arm64"]
        first = index.digest
        # Duplicate delivery: the same tag pushed again gives the same notification
        # again; archmerge queues it again and publishes nothing different.
        c.push_image("library/late", "1.0-arm64", arch="arm64")
        wait_until(lambda: am.log_text().count("repo=library/late") >= 3 or notifications_in(am) >= 4,
                   30, 0.3, message="the repeated notification did not arrive")
        time.sleep(2)
        again = wait_index(c, "library/late", "1.0")
        assert again.digest == first
