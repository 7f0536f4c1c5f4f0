"""issue 23: who may speak for which registry.

One secret per registry: with webhook_secret_file on each registry entry, a
sender holding registry A's secret cannot make archmerge read registry B
(Harbor's resource_url and distribution's request.host are the sender's
choice, the secret is the only thing that tells who sent)."""
import os
import re
import secrets

from harness import webhook
from harness.util import wait_until


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
    assert "reason=\"the Authorization header is not the webhook secret" in am.log_text()
    assert not re.search(r"assembly .*registry-b\.example\.com", am.log_text())

    # B's own secret: B is read and the index published (the refusal above was the secret's).
    assert am.send(to_b, ct, auth_header=b_secret)[0] == 202
    wait_until(lambda: re.search(r"private-b:1\.0 .*result=published", am.log_text()), 30,
               message="B's own secret did not get the index published")
    # A's secret still works for A.
    to_a, ct = webhook.push_event(repo, amd.digest, "1.0-amd64", host=a["host"])
    assert am.send(to_a, ct, auth_header=a_secret)[0] == 202
