"""issue 23: who may read the status surface, who may speak for which registry.

The status surface is private unless made public: /status and /ui name
repositories, digests, tags and registry errors, and the webhook port is
reached by whatever Harbor reaches. Probes and /metrics (no repository names)
stay open.

One secret per registry: with webhook_secret_file on each registry entry, a
sender holding registry A's secret cannot make archmerge read registry B
(Harbor's resource_url and distribution's request.host are the sender's
choice, the secret is the only thing that tells who sent)."""
import os
import re
import secrets
import subprocess

from harness import webhook
from harness.archmerge import archmerge_bin
from harness.util import wait_until


def get(url, cafile=None, auth=None):
    return webhook.request(url, None, None, auth, cafile, method="GET")


def write_secret(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return path


def test_a_registrys_secret_cannot_name_another_registry(env, admin_client, archmerge):
    a_secret = "Bearer " + secrets.token_urlsafe(16)
    b_secret = "Bearer " + secrets.token_urlsafe(16)
    a = dict(archmerge.registries[0],
             webhook_secret_file=write_secret(os.path.join(archmerge.directory, "a.secret"), a_secret))
    # Registry B: the same registry under another name, so that a read of it would succeed.
    b = dict(archmerge.registries[0], host="registry-b.example.com",
             webhook_secret_file=write_secret(os.path.join(archmerge.directory, "b.secret"), b_secret))
    am = archmerge(archmerge.config(registries=[a, b]))
    repo = "library/private-b"
    amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64")
    admin_client.push_image(repo, "1.0-arm64", arch="arm64")

    to_b, ct = webhook.push_event(repo, amd.digest, "1.0-amd64", host="registry-b.example.com")
    status, body = am.send(to_b, ct, auth_header=a_secret)[:2]
    assert status == 200, (status, body)
    assert "not the webhook secret" in str(body), body
    # The server's own secret does not speak for B either.
    assert am.send(to_b, ct)[0] == 200
    assert am.send(to_b, ct, auth_header="Bearer nobody")[0] == 401
    am.wait_log("reason=\"the Authorization header is not the webhook secret")
    assert not re.search(r"assembly .*registry-b\.example\.com", am.log_text())

    # B's own secret: B is read and the index published (the refusal above was the secret's).
    assert am.send(to_b, ct, auth_header=b_secret)[0] == 202
    wait_until(lambda: re.search(r"private-b:1\.0 .*result=published", am.log_text()), 30,
               message="B's own secret did not get the index published")
    # A's secret still works for A.
    to_a, ct = webhook.push_event(repo, amd.digest, "1.0-amd64", host=a["host"])
    assert am.send(to_a, ct, auth_header=a_secret)[0] == 202


def test_status_and_ui_are_private_unless_made_public(env, admin_client, archmerge):
    """Default (no status secret, no status_listen, no status_public): /status
    and /ui answer 403 on the webhook port; probes and /metrics answer. Before:
    /status answered anyone with repository names and digests."""
    cfg = archmerge.config(server_extra={"status_public": False})
    am = archmerge(cfg)
    repo = "library/private-status"
    amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64")
    admin_client.push_image(repo, "1.0-arm64", arch="arm64")
    payload, ct = webhook.push_event(repo, amd.digest, "1.0-amd64")
    assert am.send(payload, ct)[0] == 202
    wait_until(lambda: re.search(r"private-status:1\.0 .*result=published", am.log_text()), 30,
               message="not published")
    for path in ("/status", "/ui"):
        r = get(am.url + path, env.ca_file)
        assert r.status == 403, (path, r.status)
        assert b"private-status" not in r.body and b"status_public" in r.body, r.body
    assert get(am.url + "/healthz", env.ca_file).status == 200
    assert get(am.url + "/readyz", env.ca_file).status in (200, 503)
    m = get(am.url + "/metrics", env.ca_file)
    assert m.status == 200 and b"private-status" not in m.body and b"sha256:" not in m.body
    am.wait_log(re.compile(r'endpoints public="/healthz /readyz /metrics" .*closed="/status /ui"'))
    path = os.path.join(archmerge.directory, "private.conf")
    with open(path, "w") as f:
        f.write(cfg)
    os.chmod(path, 0o600)
    p = subprocess.run([archmerge_bin(), "check-config", "-c", path], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0 and "closed: /status /ui" in p.stdout, (p.stdout, p.stderr)
    am.stop()

    # The operator's explicit choice opens them.
    am = archmerge(archmerge.config(server_extra={"status_public": True}))
    r = get(am.url + "/status", env.ca_file)
    assert r.status == 200 and "waiting" in r.data
    assert get(am.url + "/ui", env.ca_file).status == 200
    am.stop()
