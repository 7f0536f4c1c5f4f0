"""Operations: /healthz, /readyz, /metrics, /status (and their protection),
JSON logs with ids, `archmerge status`, `archmerge version` and
`archmerge harbor-setup` against a Harbor REST stand-in that checks every
request against the rules in HARBOR.md. The real binary, the real registry."""

import json
import math
import os
import re
import shutil
import secrets
import subprocess
import time

import pytest

from harness import webhook
from harness.archmerge import archmerge_bin
from harness.harbor_standin import HarborStandin
from harness.util import free_port, wait_until

VERSION_RX = re.compile(r"^archmerge \d+\.\d+\.\d+")


# ------------------------------------------------------------------ helpers

def get(url, cafile=None, auth=None, method="GET"):
    return webhook.request(url, None, None, auth, cafile, method=method)


def write_secret(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, mode)
    return path


def run_cli(*args, timeout=60):
    return subprocess.run([archmerge_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def hook(am, repo, pushed, tag):
    payload, ct = webhook.push_event(repo, pushed.digest, tag)
    return am.send(payload, ct)


SAMPLE_RX = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL_RX = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_RX.match(text, pos)
        assert m, f"bad label syntax at {text[pos:]!r}"
        assert m.group(1) not in labels, f"label {m.group(1)} twice"
        labels[m.group(1)] = m.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        pos = m.end()
    return labels


def parse_metrics(text):
    """Parse (and validate) Prometheus text format 0.0.4 -> {family: {"type", "help", "samples"}}.
    samples: list of (sample name, labels dict, float value)."""
    fams, order = {}, []
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], *line[7:].split(" ", 1)
            f = fams.setdefault(name, {"samples": []})
            assert kind.lower() not in f, f"second {kind} for {name}"
            assert not f["samples"], f"{kind} after samples of {name}"
            if kind == "TYPE":
                assert rest in ("counter", "gauge", "histogram", "summary", "untyped"), line
                f["type"] = rest
                order.append(name)
            else:
                f["help"] = rest
            continue
        assert line and not line.startswith("#"), f"unexpected line {line!r}"
        m = SAMPLE_RX.match(line)
        assert m, f"bad sample line {line!r}"
        name, labels, value = m.group(1), parse_labels(m.group(2) or ""), m.group(3)
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in fams and \
                    fams[name[:-len(suffix)]].get("type") == "histogram":
                fam = name[:-len(suffix)]
        assert fam in fams and "type" in fams[fam], f"sample {name} before its TYPE line"
        assert order[-1] == fam, f"samples of {fam} not grouped"
        v = float(value.replace("+Inf", "inf").replace("-Inf", "-inf"))
        fams[fam]["samples"].append((name, labels, v))
    for name, f in fams.items():
        assert "help" in f and "type" in f, name
        if f["type"] == "counter":
            assert name.endswith("_total"), name
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
        keys = [(n, tuple(sorted(lab.items()))) for n, lab, _ in f["samples"]]
        assert len(keys) == len(set(keys)), f"duplicate samples in {name}"
    return fams


def check_histogram(name, samples):
    series = {}
    for n, labels, v in samples:
        base = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        s = series.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if n == name + "_bucket":
            s["buckets"].append((float(labels["le"].replace("+Inf", "inf")), v))
        elif n == name + "_sum":
            s["sum"] = v
        elif n == name + "_count":
            s["count"] = v
    for base, s in series.items():
        les = [le for le, _ in s["buckets"]]
        assert les == sorted(les) and les[-1] == math.inf, (name, base, les)
        counts = [c for _, c in s["buckets"]]
        assert counts == sorted(counts), (name, base, counts)       # cumulative
        assert s["count"] == counts[-1] and s["sum"] is not None, (name, base)


def value(fams, family, sample=None, **labels):
    """Sum of the samples of `family` (sample name defaults to the family) whose labels include `labels`."""
    sample = sample or family
    return sum(v for n, lab, v in fams[family]["samples"]
               if n == sample and all(lab.get(k) == str(x) for k, x in labels.items()))


# ------------------------------------------------------------------ probes

def test_healthz_readyz_and_version(env, archmerge):
    am = archmerge()
    r = get(am.url + "/healthz", env.ca_file)
    assert r.status == 200 and r.body == b"ok\n"
    assert get(am.url + "/healthz", env.ca_file, method="POST").status == 405
    assert get(am.url + "/healthz/x", env.ca_file).status == 404
    # The registry check comes from the background thread's first round.
    wait_until(lambda: len(get(am.url + "/readyz", env.ca_file).data["checks"]) == 5, 15)
    r = get(am.url + "/readyz", env.ca_file)
    assert r.status == 200, r.body
    body = r.data
    assert body["status"] == "ready" and body["failing"] == []
    names = [c["name"] for c in body["checks"]]
    assert names == ["configuration", "shutdown", "state_dir", "journal", f"registry {env.harbor_host}"]
    assert all(c["ok"] for c in body["checks"])
    # Unprotected by default: /metrics and /status answer without credentials.
    assert get(am.url + "/metrics", env.ca_file).status == 200
    assert get(am.url + "/status", env.ca_file).status == 200

    p = run_cli("version")
    assert p.returncode == 0 and VERSION_RX.match(p.stdout), p.stdout
    assert run_cli("status", "--help").returncode == 0
    assert "--harbor-url" in run_cli("harbor-setup", "--help").stdout


def test_readyz_names_the_failing_registry_and_state_dir(env, archmerge, tmp_path):
    good = archmerge()
    # Second instance, same registry, wrong robot password.
    bad = archmerge(archmerge.config(port=free_port(), state_dir=str(tmp_path / "state2")), registry_password="not-the-password")
    # Rejected credentials are a non-fatal check: this instance can still journal webhooks.
    wait_until(lambda: len(get(bad.url + "/readyz", env.ca_file).data["checks"]) == 5, 15)
    r = get(bad.url + "/readyz", env.ca_file)
    assert r.status == 200, r.body
    body = r.data
    assert body["status"] == "ready" and body["failing"] == []
    reg = [c for c in body["checks"] if c["name"] == f"registry {env.harbor_host}"][0]
    assert reg["ok"] is False and reg["fatal"] is False
    assert "not accepted" in reg["error"] and env.robot_user in reg["error"]
    assert "not-the-password" not in r.body.decode()
    # The first one still has the right password and stays ready.
    assert get(good.url + "/readyz", env.ca_file).status == 200
    # Health is about the process only.
    assert get(bad.url + "/healthz", env.ca_file).status == 200

    # A state directory that cannot be written is named too.
    # (serve refuses to start without one, so it goes away while the service runs)
    state = tmp_path / "state3"
    state.mkdir()
    third = archmerge(archmerge.config(port=free_port(), state_dir=str(state)))
    shutil.rmtree(state)
    wait_until(lambda: get(third.url + "/readyz", env.ca_file).status == 503, 15)
    r = get(third.url + "/readyz", env.ca_file)
    assert r.status == 503 and r.data["failing"] == ["state_dir"], r.body
    assert "No such file" in [c for c in r.data["checks"] if c["name"] == "state_dir"][0]["error"]
    wait_until(lambda: re.search(r"readiness status=503 failing=state_dir", third.log_text()), 15)


# ------------------------------------------------------------------ metrics

def test_metrics_after_publish(env, admin_client, archmerge):
    am = archmerge()
    t0 = time.time()
    repo = "library/metered"
    amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64", salt="metrics")
    arm = admin_client.push_image(repo, "1.0-arm64", arch="arm64", salt="metrics")
    assert hook(am, repo, amd, "1.0-amd64")[0] == 202
    assert hook(am, repo, arm, "1.0-arm64")[0] == 202
    assert am.send({"type": "PULL_ARTIFACT"})[0] == 200                          # ignored: not_push
    assert am.send(*webhook.push_event(repo, amd.digest, None))[0] == 200        # ignored: by_digest
    assert am.send(*webhook.push_event(repo, amd.digest, "1.0-amd64"), auth_header="Bearer nope")[0] == 401
    wait_until(lambda: admin_client.get_manifest(repo, "1.0"), 20, message="index not published")

    def scrape():
        r = get(am.url + "/metrics", env.ca_file)
        assert r.status == 200
        assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        return parse_metrics(r.body.decode())

    wh = "archmerge_webhooks_total"

    def settled(f):
        # A webhook is counted after its answer left, and the index's PUT after
        # the registry holds it: wait for what is asserted below, not one scrape.
        answered = (value(f, wh, outcome="queued", status=202), value(f, wh, outcome="rejected", status=401),
                    value(f, wh, outcome="ignored", reason="not_push", status=200),
                    value(f, wh, outcome="ignored", reason="by_digest", status=200))
        return (value(f, "archmerge_assemblies_total", outcome="published") == 1 and get_queue(f) == 0
                and answered == (2, 1, 1, 1))
    fams = wait_until(lambda: (lambda f: f if settled(f) else None)(scrape()), 20)
    assert value(fams, wh, outcome="queued", status=202) == 2
    assert value(fams, wh, outcome="ignored", reason="not_push", status=200) == 1
    assert value(fams, wh, outcome="ignored", reason="by_digest", status=200) == 1
    assert value(fams, wh, outcome="rejected", status=401) == 1
    asm = "archmerge_assemblies_total"
    assert value(fams, asm, outcome="published") == 1
    assert value(fams, asm, outcome="refused") == 0 and value(fams, asm, outcome="failed") == 0
    req = "archmerge_registry_requests_total"
    assert value(fams, req, method="PUT", status=201) == 1
    assert value(fams, req, method="GET") + value(fams, req, method="HEAD") >= 3
    hist = "archmerge_registry_request_duration_seconds"
    assert fams[hist]["type"] == "histogram"
    assert value(fams, hist, hist + "_count") == value(fams, req)
    assert value(fams, hist, hist + "_count", method="PUT") == 1
    assert value(fams, "archmerge_registry_token_fetches_total", status=200) >= 1
    last = value(fams, "archmerge_last_publish_timestamp_seconds")
    assert t0 - 1 <= last <= time.time() + 1
    assert value(fams, "archmerge_build_info", version=run_cli("version").stdout.split()[1]) == 1
    assert fams["archmerge_queue_depth"]["type"] == "gauge"
    assert fams["archmerge_journal_bytes"]["type"] == "gauge" and value(fams, "archmerge_journal_bytes") > 0
    assert value(fams, "archmerge_journal_pending") >= 0
    assert value(fams, "archmerge_groups_waiting") == 0
    assert 0 < value(fams, "archmerge_start_time_seconds") <= time.time()


def get_queue(fams):
    return value(fams, "archmerge_queue_depth")


# ------------------------------------------------------------------ status

def test_status_waiting_published_refused_and_cli(env, admin_client, archmerge, tmp_path):
    secret = "Bearer " + secrets.token_urlsafe(16)
    secret_file = write_secret(str(tmp_path / "status.secret"), secret)
    am = archmerge(archmerge.config(server_extra={"status_secret_file": secret_file}))
    wait_repo = "library/st-wait"
    pub_repo = "library/st-pub"
    bad_repo = "library/st-bad"
    w_amd = admin_client.push_image(wait_repo, "4.0-amd64", arch="amd64", salt="st")
    p_amd = admin_client.push_image(pub_repo, "4.0-amd64", arch="amd64", salt="st2")
    p_arm = admin_client.push_image(pub_repo, "4.0-arm64", arch="arm64", salt="st2")
    b_amd = admin_client.push_image(bad_repo, "4.0-amd64", arch="amd64", salt="st3")
    b_liar = admin_client.push_image(bad_repo, "4.0-arm64", arch="amd64", salt="st3-liar")
    assert hook(am, wait_repo, w_amd, "4.0-amd64")[0] == 202
    assert hook(am, pub_repo, p_amd, "4.0-amd64")[0] == 202
    assert hook(am, pub_repo, p_arm, "4.0-arm64")[0] == 202
    assert hook(am, bad_repo, b_amd, "4.0-amd64")[0] == 202
    assert hook(am, bad_repo, b_liar, "4.0-arm64")[0] == 202
    published = wait_until(lambda: admin_client.get_manifest(pub_repo, "4.0"), 20)

    # Protected: no or a wrong Authorization gets 401, on /metrics as well.
    assert get(am.url + "/status", env.ca_file).status == 401
    assert get(am.url + "/status", env.ca_file, auth=secret + "x").status == 401
    assert get(am.url + "/metrics", env.ca_file).status == 401
    assert get(am.url + "/metrics", env.ca_file, auth=secret).status == 200
    assert get(am.url + "/status", env.ca_file, auth=secret, method="DELETE").status == 405
    assert get(am.url + "/healthz", env.ca_file).status == 200      # probes stay open

    def status():
        r = get(am.url + "/status", env.ca_file, auth=secret)
        assert r.status == 200
        st = r.data
        done = (any(f["group"].endswith(bad_repo + ":4.0") for f in st["failures"]) and
                any(p["group"].endswith(pub_repo + ":4.0") for p in st["published"]) and
                st["queue_depth"] == 0)
        return st if done else None
    st = wait_until(status, 20)
    host = env.harbor_host
    assert [w["group"] for w in st["waiting"]] == [f"{host}/{wait_repo}:4.0"]
    w = st["waiting"][0]
    assert w["missing"] == ["arm64"] and w["detail"] == "missing arm64" and w["target"] == f"{wait_repo}:4.0"
    assert w["rule"] == "per-arch tags" and w["checks"] >= 1
    pub = [p for p in st["published"] if p["group"] == f"{host}/{pub_repo}:4.0"]
    assert len(pub) == 1 and pub[0]["digest"] == published.digest
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", pub[0]["time"]) and pub[0]["job"]
    fail = [f for f in st["failures"] if f["group"] == f"{host}/{bad_repo}:4.0"]
    assert fail[0]["outcome"] == "refused"
    assert "image config says linux/amd64 but the tag says arm64" in fail[0]["error"]
    assert st["counts"]["published"] == 1 and st["counts"]["refused"] >= 1
    assert VERSION_RX.match("archmerge " + st["version"])

    # The command asks the same endpoint over TLS (the configured certificate) with the secret.
    p = run_cli("status", "-c", am.config_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert f"{host}/{wait_repo}:4.0  lacks arm64" in out
    assert f"{host}/{pub_repo}:4.0  {published.digest}" in out
    assert re.search(re.escape(f"{host}/{bad_repo}:4.0") + r"  refused: .*image config says", out)
    p = run_cli("status", "-c", am.config_path, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["waiting"][0]["missing"] == ["arm64"]

    # Published leaves the waiting list: push the missing arm64 now.
    w_arm = admin_client.push_image(wait_repo, "4.0-arm64", arch="arm64", salt="st")
    assert hook(am, wait_repo, w_arm, "4.0-arm64")[0] == 202
    wait_until(lambda: not get(am.url + "/status", env.ca_file, auth=secret).data["waiting"], 20)

    # Wrong secret in the file the command reads: refused, exit 1.
    write_secret(secret_file, "Bearer wrong")
    p = run_cli("status", "-c", am.config_path)
    assert p.returncode == 1 and "401" in p.stderr
    am.stop()
    p = run_cli("status", "-c", am.config_path)
    assert p.returncode == 1 and "does not answer" in p.stderr
    assert run_cli("status").returncode == 2


def test_status_listener_separate_port(env, admin_client, archmerge, tmp_path):
    secret = "Bearer " + secrets.token_urlsafe(16)
    secret_file = write_secret(str(tmp_path / "status.secret"), secret)
    sport = free_port()
    am = archmerge(archmerge.config(server_extra={"status_secret_file": secret_file,
                                                  "status_listen": f"127.0.0.1:{sport}"}))
    surl = f"http://127.0.0.1:{sport}"
    # /status and /metrics live on the status listener only (plain HTTP), with the secret.
    assert get(am.url + "/status", env.ca_file, auth=secret).status == 404
    assert get(am.url + "/metrics", env.ca_file, auth=secret).status == 404
    assert get(surl + "/status").status == 401
    r = get(surl + "/status", auth=secret)
    assert r.status == 200 and r.data["waiting"] == []
    assert get(surl + "/metrics", auth=secret).status == 200
    # Probes answer on both; the webhook only on the main listener.
    assert get(surl + "/healthz").status == 200 and get(am.url + "/healthz", env.ca_file).status == 200
    assert get(surl + "/readyz").status == 200
    r = webhook.request(surl + "/hooks/harbor", {"type": "PULL_ARTIFACT"}, webhook.CT_DEFAULT, env.webhook_auth)
    assert r.status == 404
    assert am.send({"type": "PULL_ARTIFACT"})[0] == 200
    p = run_cli("status", "-c", am.config_path)
    assert p.returncode == 0 and f"at {surl}/status" in p.stdout, p.stderr + p.stdout

    # Same port twice is a configuration error.
    cfg = tmp_path / "same.conf"
    cfg.write_text(archmerge.config(server_extra={"status_listen": f"127.0.0.1:{archmerge.port}"}))
    os.chmod(cfg, 0o600)
    p = run_cli("check-config", "-c", str(cfg))
    assert p.returncode == 1 and "status_listen" in p.stderr


# ------------------------------------------------------------------ logs

def test_json_logs_carry_ids(env, admin_client, archmerge):
    am = archmerge(archmerge.config(extra={"log_format": "json"}))
    repo = "library/jsonlog"
    amd = admin_client.push_image(repo, "2.0-amd64", arch="amd64", salt="json")
    arm = admin_client.push_image(repo, "2.0-arm64", arch="arm64", salt="json")
    assert hook(am, repo, amd, "2.0-amd64")[0] == 202
    assert hook(am, repo, arm, "2.0-arm64")[0] == 202
    assert am.send({"type": "PULL_ARTIFACT"})[0] == 200

    def records():
        recs = [json.loads(line) for line in am.log_text().splitlines() if line.strip()]
        pub = [r for r in recs if r.get("event") == "assembly" and r.get("result") == "published"]
        hooks = [r for r in recs if r.get("event") == "webhook"]     # each written after its answer
        return recs if pub and len(hooks) >= 3 else None
    recs = wait_until(records, 20)
    for r in recs:
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", r["ts"]) and r["level"] in (
            "debug", "info", "warn", "error"), r
        assert "event" in r or "msg" in r
    start = [r for r in recs if r.get("event") == "listening"]
    assert start and start[0]["address"] == f"127.0.0.1:{archmerge.port}"
    hooks = [r for r in recs if r.get("event") == "webhook"]
    assert len(hooks) == 3
    assert len({h["req"] for h in hooks}) == 3
    assert [h["status"] for h in hooks] == [202, 202, 200]
    assert hooks[0]["outcome"] == "queued" and hooks[0]["group"] == f"{env.harbor_host}/{repo}:2.0"
    assert hooks[2]["outcome"] == "ignored" and isinstance(hooks[2]["ms"], int)
    asm = [r for r in recs if r.get("event") == "assembly"]
    assert len({a["job"] for a in asm}) == len(asm) >= 1
    pub = [a for a in asm if a["result"] == "published"][0]
    assert pub["group"] == f"{env.harbor_host}/{repo}:2.0" and pub["digest"].startswith("sha256:")
    assert isinstance(pub["ms"], int) and pub["rule"] == "per-arch tags"
    assert env.webhook_auth not in am.log_text()


# ------------------------------------------------------------------ harbor-setup

@pytest.fixture
def harbor(env):
    h = HarborStandin(tls_cert=env.pki.server.cert, tls_key=env.pki.server.key, admin_user="admin",
                      admin_password=secrets.token_urlsafe(12), projects=("library", "team", "fresh"))
    h.start()
    try:
        yield h
    finally:
        h.stop()


def setup_cli(harbor, cfg, pwfile, *args):
    return run_cli("harbor-setup", "-c", cfg, "--harbor-url", harbor.url, "--harbor-user", "admin",
                   "--harbor-password-file", pwfile, *args)


def test_harbor_setup_create_rerun_update_dry_run(env, archmerge, harbor, tmp_path):
    am = archmerge()
    cfg = am.config_path
    pwfile = write_secret(str(tmp_path / "harbor.pw"), harbor.admin_password)
    # An unrelated policy in "team" stays untouched.
    harbor.policies[harbor.projects["team"]].append(
        {"id": 99, "name": "other", "enabled": True, "event_types": ["PULL_ARTIFACT"], "project_id": 2,
         "targets": [{"type": "http", "address": "https://x.example/h", "auth_header": "",
                      "skip_cert_verify": False, "payload_format": "Default"}]})

    # The robot may push in library/* only (see conftest): "team" is set up, its check fails.
    p = setup_cli(harbor, cfg, pwfile, "--project", "library", "--project", "team")
    assert p.returncode == 1, p.stderr + p.stdout
    assert f"project team: robot {env.robot_user} may not pull or push in this project" in p.stderr
    assert harbor.violations == []
    for project in ("library", "team"):
        mine = [x for x in harbor.policies_of(project) if x["name"] == "archmerge"]
        assert len(mine) == 1
        pol = mine[0]
        assert pol["enabled"] is True and pol["event_types"] == ["PUSH_ARTIFACT", "SCANNING_COMPLETED"]
        assert len(pol["targets"]) == 1
        t = pol["targets"][0]
        assert t == {"type": "http", "address": am.webhook_url, "auth_header": env.webhook_auth,
                     "skip_cert_verify": False, "payload_format": "Default"}
        assert f"project {project}: created webhook policy" in p.stdout
    assert f"project library: robot {env.robot_user} can pull and push" in p.stdout
    assert [x["name"] for x in harbor.policies_of("team")] == ["other", "archmerge"]
    assert all(c.headers.get("x-is-resource-name") == "true" for c in harbor.calls)
    assert [c.status for c in harbor.writes()] == [201, 201]
    assert env.webhook_auth not in p.stdout + p.stderr

    # Idempotent: nothing written the second time, still one policy each.
    n = len(harbor.writes())
    p = setup_cli(harbor, cfg, pwfile, "--project", "library")
    assert p.returncode == 0, p.stderr
    assert "already up to date" in p.stdout and len(harbor.writes()) == n
    assert len([x for x in harbor.policies_of("library") if x["name"] == "archmerge"]) == 1
    p = setup_cli(harbor, cfg, pwfile, "--project", "team")
    assert p.returncode == 1 and "already up to date" in p.stdout and len(harbor.writes()) == n

    # Address and payload format changed: updated in place (same id), 200.
    before = [x for x in harbor.policies_of("library") if x["name"] == "archmerge"][0]
    p = setup_cli(harbor, cfg, pwfile, "--project", "library", "--webhook-url",
                  "https://archmerge.example:8443/hooks/harbor", "--payload-format", "CloudEvents")
    assert p.returncode == 0, p.stderr
    assert "updated webhook policy" in p.stdout and "address, payload_format" in p.stdout
    after = [x for x in harbor.policies_of("library") if x["name"] == "archmerge"]
    assert len(after) == 1 and after[0]["id"] == before["id"]
    assert after[0]["targets"][0]["address"] == "https://archmerge.example:8443/hooks/harbor"
    assert after[0]["targets"][0]["payload_format"] == "CloudEvents"
    assert harbor.writes()[-1].method == "PUT" and harbor.writes()[-1].status == 200

    # A disabled policy of that name is enabled again.
    harbor.policies[harbor.projects["library"]][0]["enabled"] = False
    p = setup_cli(harbor, cfg, pwfile, "--project", "library", "--webhook-url",
                  "https://archmerge.example:8443/hooks/harbor", "--payload-format", "CloudEvents")
    assert p.returncode == 0 and "updated" in p.stdout and "enabled" in p.stdout
    assert harbor.policies_of("library")[0]["enabled"] is True

    # A policy from before SCANNING_COMPLETED was subscribed (issue 21): updated to include it.
    harbor.policies[harbor.projects["library"]][0]["event_types"] = ["PUSH_ARTIFACT"]
    p = setup_cli(harbor, cfg, pwfile, "--project", "library", "--webhook-url",
                  "https://archmerge.example:8443/hooks/harbor", "--payload-format", "CloudEvents")
    assert p.returncode == 0 and "updated" in p.stdout and "event_types" in p.stdout, p.stdout
    assert harbor.policies_of("library")[0]["event_types"] == ["PUSH_ARTIFACT", "SCANNING_COMPLETED"]

    # Dry run: says what it would do, writes nothing.
    n = len(harbor.writes())
    p = setup_cli(harbor, cfg, pwfile, "--project", "library", "--project", "fresh", "--dry-run")
    assert p.returncode == 1 and "project fresh: robot" in p.stderr, p.stderr    # the robot check runs too
    assert "project library: would update" in p.stdout and "address" in p.stdout
    assert "project fresh: would create" in p.stdout and "dry run" in p.stdout
    assert len(harbor.writes()) == n and harbor.policies_of("fresh") == []
    assert harbor.violations == []


def test_harbor_setup_failures(env, archmerge, harbor, tmp_path):
    am = archmerge()
    cfg = am.config_path
    # Wrong admin password: 401 named, nothing written.
    wrong = write_secret(str(tmp_path / "wrong.pw"), "not-it")
    p = setup_cli(harbor, cfg, wrong, "--project", "library")
    assert p.returncode == 1 and "admin credentials (401)" in p.stderr, p.stderr
    assert harbor.writes() == [] and harbor.policies_of("library") == []
    # Password file readable by others: refused before any request.
    loose = write_secret(str(tmp_path / "loose.pw"), harbor.admin_password, mode=0o644)
    n = len(harbor.calls)
    p = setup_cli(harbor, cfg, loose, "--project", "library")
    assert p.returncode == 1 and "chmod 600" in p.stderr and len(harbor.calls) == n
    pwfile = write_secret(str(tmp_path / "harbor.pw"), harbor.admin_password)
    # Unknown project: 404 named.
    p = setup_cli(harbor, cfg, pwfile, "--project", "nope")
    assert p.returncode == 1 and "project nope: not found" in p.stderr
    # Usage errors: exit 2.
    assert setup_cli(harbor, cfg, pwfile).returncode == 2
    assert setup_cli(harbor, cfg, pwfile, "--project", "library", "--payload-format", "xml").returncode == 2
    wild = tmp_path / "wild.conf"
    wild.write_text(open(cfg).read().replace(f'"127.0.0.1:{archmerge.port}"', f'"0.0.0.0:{free_port()}"'))
    os.chmod(wild, 0o600)
    p = setup_cli(harbor, str(wild), pwfile, "--project", "library")
    assert p.returncode == 2 and "--webhook-url" in p.stderr

    # A robot that may only pull: the policy is set up, the check fails (exit 1).
    reader_pw = write_secret(str(tmp_path / "reader.pw"), env.reader_password)
    reader_cfg = tmp_path / "reader.conf"
    regs = [dict(r, username=env.reader_user, password_file=reader_pw) for r in env.registries_config()]
    reader_cfg.write_text(archmerge.config(registries=regs))
    os.chmod(reader_cfg, 0o600)
    p = setup_cli(harbor, str(reader_cfg), pwfile, "--project", "library")
    assert p.returncode == 1 and f"robot {env.reader_user} may not push" in p.stderr, p.stderr
    assert len(harbor.policies_of("library")) == 1
    # Wrong robot password: the token service answers as for anonymous.
    bad_pw = write_secret(str(tmp_path / "bad.pw"), "wrong-robot-password")
    bad_cfg = tmp_path / "bad.conf"
    regs = [dict(r, password_file=bad_pw) for r in env.registries_config()]
    bad_cfg.write_text(archmerge.config(registries=regs))
    os.chmod(bad_cfg, 0o600)
    p = setup_cli(harbor, str(bad_cfg), pwfile, "--project", "library")
    assert p.returncode == 1 and "were not accepted" in p.stderr, p.stderr
    assert harbor.violations == [f"GET /api/v2.0/projects/library/webhook/policies: no or wrong Basic credentials"]


def test_status_secret_is_read_again_on_reload(env, archmerge, tmp_path):
    """A rotated status_secret_file reaches /status, /metrics and /ui after SIGHUP."""
    import signal
    old = "Bearer " + secrets.token_urlsafe(16)
    new = "Bearer " + secrets.token_urlsafe(16)
    secret_file = write_secret(str(tmp_path / "status.secret"), old)
    am = archmerge(archmerge.config(server_extra={"status_secret_file": secret_file}))
    assert get(am.url + "/status", env.ca_file, auth=old).status == 200
    write_secret(secret_file, new)
    am.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: get(am.url + "/status", env.ca_file, auth=new).status == 200, 10, 0.2,
               message="the rotated status secret was not taken after SIGHUP")
    for path in ("/status", "/metrics", "/ui"):
        assert get(am.url + path, env.ca_file, auth=old).status == 401
        assert get(am.url + path, env.ca_file, auth=new).status == 200
