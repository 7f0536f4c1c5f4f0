"""GET /ui, the status page: headless Chromium loads it from the real binary
over HTTPS (the test CA trusted through an NSS database, no certificate
errors ignored) while one group waits, one is published and one is refused,
all through real webhooks against the real registry. The DOM names the right
targets, architectures and reasons; a screenshot is kept as an artifact.
The page shares /status's protection (secret, status_listen)."""

import base64
import html
import os
import re
import secrets
import shutil
import subprocess

import pytest

from harness import webhook
from harness.util import free_port, wait_until

CHROMIUM = shutil.which("chromium")
CERTUTIL = shutil.which("certutil")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--disable-default-apps", "--mute-audio"]


def get(url, cafile=None, auth=None, method="GET"):
    return webhook.request(url, None, None, auth, cafile, method=method)


def hook(am, repo, pushed, tag):
    payload, ct = webhook.push_event(repo, pushed.digest, tag)
    return am.send(payload, ct)


def write_secret(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return path


class Browser:
    """Chromium with its own HOME (NSS db trusting the test CA) and profile."""

    def __init__(self, tmp_path, ca_file):
        self.home = tmp_path / "chromium-home"
        nssdb = self.home / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        subprocess.run([CERTUTIL, "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True,
                       capture_output=True)
        subprocess.run([CERTUTIL, "-A", "-d", f"sql:{nssdb}", "-n", "archmerge-test-ca", "-t", "C,,",
                        "-i", ca_file], check=True, capture_output=True)
        self.n = 0

    def run(self, *args):
        self.n += 1
        profile = self.home / f"profile-{self.n}"       # fresh each run
        env = dict(os.environ, HOME=str(self.home))
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(k, None)
        p = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                            "--no-proxy-server", *args],
                           capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
        return p

    def dom(self, url):
        p = self.run("--dump-dom", url)
        assert p.returncode == 0, p.stderr[-2000:]
        return p.stdout

    def screenshot(self, url, path):
        p = self.run(f"--screenshot={path}", "--window-size=740,1050", "--hide-scrollbars", url)
        assert p.returncode == 0 and os.path.getsize(path) > 1000, p.stderr[-2000:]


def section(dom, name):
    m = re.search(rf'<section id="{name}">(.*?)</section>', dom, re.S)
    assert m, f"no section {name}"
    return m.group(1)


def items(sec):
    """Each item's visible text, tags stripped, entities decoded, spaces squeezed."""
    out = []
    for chunk in re.split(r'<div class="item [^"]*"[^>]*>', sec)[1:]:
        text = html.unescape(re.sub(r"<[^>]+>", " ", chunk))
        out.append(re.sub(r"\s+", " ", text).strip())
    return out


def artifacts_dir(tmp_path):
    d = os.environ.get("ARCHMERGE_ARTIFACTS")
    if not d:
        return tmp_path
    os.makedirs(d, exist_ok=True)
    return d


@pytest.mark.skipif(CHROMIUM is None or CERTUTIL is None, reason="chromium or certutil (libnss3-tools) missing")
def test_ui_in_chromium_waiting_published_refused(env, admin_client, archmerge, tmp_path):
    am = archmerge()
    wait_repo, pub_repo, bad_repo = "library/ui-wait", "library/ui-pub", "library/ui-bad"
    w_amd = admin_client.push_image(wait_repo, "5.0-amd64", arch="amd64", salt="ui")
    p_amd = admin_client.push_image(pub_repo, "5.0-amd64", arch="amd64", salt="ui2")
    p_arm = admin_client.push_image(pub_repo, "5.0-arm64", arch="arm64", salt="ui2")
    b_amd = admin_client.push_image(bad_repo, "5.0-amd64", arch="amd64", salt="ui3")
    b_liar = admin_client.push_image(bad_repo, "5.0-arm64", arch="amd64", salt="ui3-liar")
    for repo, img, tag in ((wait_repo, w_amd, "5.0-amd64"), (pub_repo, p_amd, "5.0-amd64"),
                           (pub_repo, p_arm, "5.0-arm64"), (bad_repo, b_amd, "5.0-amd64"),
                           (bad_repo, b_liar, "5.0-arm64")):
        assert hook(am, repo, img, tag)[0] == 202
    published = wait_until(lambda: admin_client.get_manifest(pub_repo, "5.0"), 30)

    def settled():
        st = get(am.url + "/status", env.ca_file).data
        ok = (any(f["target"] == bad_repo + ":5.0" for f in st["failures"]) and
              any(p["target"] == pub_repo + ":5.0" for p in st["published"]) and
              any(w["target"] == wait_repo + ":5.0" for w in st["waiting"]) and st["queue_depth"] == 0)
        return st if ok else None
    st = wait_until(settled, 30)
    pub_json = [p for p in st["published"] if p["target"] == pub_repo + ":5.0"][0]
    assert [c["arch"] for c in pub_json["children"]] == ["amd64", "arm64"]
    assert pub_json["webhook_to_publish_ms"] >= 0 and "journal_pending" in st

    r = get(am.url + "/ui", env.ca_file)
    assert r.status == 200 and r.headers.get("content-type", "").startswith("text/html")

    browser = Browser(tmp_path, env.ca_file)
    dom = browser.dom(am.url + "/ui")
    assert "<title>archmerge status</title>" in dom, dom[:2000]

    waiting = items(section(dom, "waiting"))
    w = [i for i in waiting if i.startswith(wait_repo + ":5.0")]
    assert len(w) == 1, waiting
    assert "present amd64 linux/amd64 " + w_amd.digest in w[0], w[0]
    assert f"from {wait_repo}:5.0-amd64" in w[0] and "missing arm64" in w[0], w[0]
    assert "rule per-arch tags" in w[0] and "last check" in w[0] and "since" in w[0]

    pubs = items(section(dom, "published"))
    p = [i for i in pubs if i.startswith(pub_repo + ":5.0")]
    assert len(p) == 1, pubs
    assert "digest " + published.digest in p[0]
    assert f"amd64 linux/amd64 {p_amd.digest}" in p[0] and f"arm64 linux/arm64 {p_arm.digest}" in p[0]
    assert "webhook to publish" in p[0] and "extra tags written" in p[0]

    fails = items(section(dom, "failures"))
    # One run per webhook, or one for both when the second arrives while the first
    # is queued (a loaded machine runs them apart): the ring holds each refusal.
    f = [i for i in fails if i.startswith(bad_repo + ":5.0")]
    assert 1 <= len(f) <= 2, fails
    for item in f:
        assert f"refused {bad_repo}:5.0-arm64: image config says linux/amd64 but the tag says arm64" in item, item
        assert f"amd64 linux/amd64 {b_amd.digest}" in item      # what was read before the refusal
        assert f"rejected arm64 linux/amd64 {b_liar.digest} from {bad_repo}:5.0-arm64" in item, item

    assert re.search(r'id="queue-depth">0<', dom) and 'href="/status"' in dom
    assert "http-equiv=\"refresh\"" in dom

    # The filter box (set through the address): only the matching group stays visible.
    dom = browser.dom(am.url + "/ui#q=UI-PUB")
    classes = dict((key, cls) for cls, key in re.findall(r'<div class="item ([^"]*)" data-key="[^"]* ([^" ]*)"', dom))
    assert "hidden" not in classes[pub_repo + ":5.0"], classes
    assert "hidden" in classes[wait_repo + ":5.0"] and "hidden" in classes[bad_repo + ":5.0"], classes

    shot = os.path.join(artifacts_dir(tmp_path), "ui.png")
    browser.screenshot(am.url + "/ui", shot)
    with open(shot, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot}")


def test_ui_hostile_version_escaped(env, admin_client, archmerge):
    """A webhook naming a tag with markup: whatever the service makes of it, the page
    carries no markup from it (the unit tests cover every field with hostile values)."""
    am = archmerge()
    repo = "library/ui-evil"
    img = admin_client.push_image(repo, "1.0-amd64", arch="amd64", salt="evil")
    evil = "<img src=x onerror=alert(1)>-amd64"
    payload, ct = webhook.push_event(repo, img.digest, evil)
    status = am.send(payload, ct)[0]
    assert status in (200, 202, 400), status
    r = get(am.url + "/ui", env.ca_file)
    assert r.status == 200
    body = r.body.decode()
    assert "<img" not in body and body.count("<script>") == 1
    # Only the page's own script and style run (by hash): injected markup could not run code
    # even if it got through; the page cannot be framed, rebased or post forms elsewhere.
    csp = r.headers.get("content-security-policy", "")
    assert "unsafe-inline" not in csp, csp
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/]{43}='", csp), csp
    for d in ("default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"):
        assert d in csp, csp


def test_ui_protected_like_status(env, archmerge, tmp_path):
    secret = "Bearer " + secrets.token_urlsafe(16)
    secret_file = write_secret(str(tmp_path / "status.secret"), secret)
    am = archmerge(archmerge.config(server_extra={"status_secret_file": secret_file}))
    r = get(am.url + "/ui", env.ca_file)
    assert r.status == 401 and b"<html" not in r.body
    assert get(am.url + "/ui", env.ca_file, auth=secret + "x").status == 401
    r = get(am.url + "/ui", env.ca_file, auth=secret)
    assert r.status == 200 and b"<title>archmerge status</title>" in r.body
    assert get(am.url + "/ui", env.ca_file, auth=secret, method="POST").status == 405
    assert get(am.url + "/ui/x", env.ca_file, auth=secret).status == 404
    am.stop()

    sport = free_port()
    am2 = archmerge(archmerge.config(port=free_port(), state_dir=str(tmp_path / "s2"),
                                     server_extra={"status_secret_file": secret_file,
                                                   "status_listen": f"127.0.0.1:{sport}"}))
    surl = f"http://127.0.0.1:{sport}"
    assert get(am2.url + "/ui", env.ca_file, auth=secret).status == 404    # not on the main listener
    assert get(surl + "/ui").status == 401
    r = get(surl + "/ui", auth=secret)
    assert r.status == 200 and b'href="/status"' in r.body
    assert get(surl + "/ui").headers.get("www-authenticate", "").startswith("Bearer ")
    am2.stop()

    # A Basic secret: the challenge says Basic, so a browser asks for user and password.
    basic = "Basic " + base64.b64encode(b"ops:" + secrets.token_urlsafe(12).encode()).decode()
    write_secret(secret_file, basic)
    am3 = archmerge(archmerge.config(port=free_port(), state_dir=str(tmp_path / "s3"),
                                     server_extra={"status_secret_file": secret_file}))
    r = get(am3.url + "/ui", env.ca_file)
    assert r.status == 401 and r.headers.get("www-authenticate", "").startswith('Basic realm="archmerge"')
    assert get(am3.url + "/ui", env.ca_file, auth=basic).status == 200
