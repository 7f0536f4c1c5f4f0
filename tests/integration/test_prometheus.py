"""The alerting rules with Debian's prometheus package (2.42, which ships promtool):
promtool checks the rules, runs their unit tests (tests/prometheus/*.test.yml) and
lints a live instance's /metrics; then a real prometheus process scrapes a real
archmerge over HTTPS with the status secret, exactly as docs/operation.md tells
operators to configure it, and evaluates the rules: the credentials alert fires
after the robot secret is made wrong and clears after the reload. All on 127.0.0.1."""

import glob
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest
import yaml

from harness import webhook
from harness.util import free_port, wait_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(ROOT, "deploy", "prometheus", "archmerge-rules.yml")
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")

pytestmark = pytest.mark.skipif(PROMTOOL is None or PROMETHEUS is None,
                                reason="promtool/prometheus not installed (Debian package prometheus; "
                                       "tests/deps.sh installs it)")


def promtool(*args, stdin=None):
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def rules():
    with open(RULES) as f:
        return {r["alert"]: r for g in yaml.safe_load(f)["groups"] for r in g["rules"]}


def write_secret(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return path


# ------------------------------------------------------------------ promtool

def test_promtool_check_rules():
    r = promtool("check", "rules", RULES)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules())} rules found" in r.stdout


def test_promtool_unit_tests_fire_and_silence_every_alert():
    files = sorted(glob.glob(os.path.join(ROOT, "tests", "prometheus", "*.test.yml")))
    assert files
    r = promtool("test", "rules", *files)
    assert r.returncode == 0, r.stdout + r.stderr
    # Every alert has a case where it fires and one where it must stay silent.
    fired, silent = set(), set()
    for path in files:
        with open(path) as f:
            for t in yaml.safe_load(f)["tests"]:
                for a in t.get("alert_rule_test", []):
                    (fired if a.get("exp_alerts") else silent).add(a["alertname"])
    assert set(rules()) - fired == set(), "alerts no test fires"
    assert set(rules()) - silent == set(), "alerts no test keeps silent"


def test_every_alert_documents_itself():
    """summary, description and a runbook_url whose anchor is a section of docs/operation.md."""
    with open(os.path.join(ROOT, "docs", "operation.md")) as f:
        ops = f.read()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.*)$", ops, re.M)}
    for name, r in rules().items():
        ann = r["annotations"]
        assert ann.get("summary") and len(ann.get("description", "")) > 40, name
        assert r["labels"]["severity"] in ("critical", "warning"), name
        page, _, anchor = ann["runbook_url"].partition("#")
        assert page == "docs/operation.md" and anchor == name.lower() and anchor in anchors, name


def test_promtool_check_metrics_on_a_live_instance(env, admin_client, archmerge, tmp_path):
    """Naming and help conventions on what a busy instance exports: every family
    has samples of each kind (labelled counters, a histogram, refusals)."""
    token = secrets.token_urlsafe(16)
    secret_file = write_secret(str(tmp_path / "status.secret"), "Bearer " + token)
    am = archmerge(archmerge.config(server_extra={"status_secret_file": secret_file}))
    repo = "library/linted"
    amd = admin_client.push_image(repo, "1.0-amd64", arch="amd64", salt="lint")
    arm = admin_client.push_image(repo, "1.0-arm64", arch="arm64", salt="lint")
    for d, tag in ((amd, "1.0-amd64"), (arm, "1.0-arm64")):
        assert am.send(*webhook.push_event(repo, d.digest, tag))[0] == 202
    assert am.send(*webhook.push_event(repo, amd.digest, "1.0-amd64"), auth_header="Bearer nope")[0] == 401
    wait_until(lambda: admin_client.get_manifest(repo, "1.0"), 20, message="index not published")
    # A group that waits for arm64: the age ArchmergeGroupWaitingTooLong reads grows.
    lone = admin_client.push_image("library/lonely", "2.0-amd64", arch="amd64", salt="lint")
    assert am.send(*webhook.push_event("library/lonely", lone.digest, "2.0-amd64"))[0] == 202

    def scrape():
        r = webhook.request(am.url + "/metrics", None, None, "Bearer " + token, env.ca_file, method="GET")
        assert r.status == 200
        text = r.body.decode()
        assert 'archmerge_assemblies_total{outcome="published"} 1' in text
        assert "archmerge_registry_request_duration_seconds_bucket" in text
        assert re.search(r"^archmerge_registry_credentials_ok\{[^}]*\} 1$", text, re.M)
        assert re.search(r"^archmerge_groups_waiting 1$", text, re.M)
        assert int(re.search(r"^archmerge_oldest_waiting_group_age_seconds (\d+)$", text, re.M).group(1)) >= 1
        assert re.search(r"^archmerge_journal_failing 0$", text, re.M)
        return text
    text = wait_until(scrape, 20)
    r = promtool("check", "metrics", stdin=text)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


# ------------------------------------------------------------------ a real prometheus

def docs_scrape_config():
    """The prometheus.yml block of docs/operation.md "Scraping with Prometheus"."""
    with open(os.path.join(ROOT, "docs", "operation.md")) as f:
        ops = f.read()
    section = ops[ops.index("### Scraping with Prometheus"):]
    m = re.search(r"```yaml\n(# prometheus\.yml\n.*?)```", section, re.S)
    assert m, "no prometheus.yml block in docs/operation.md"
    return m.group(1)


class Prometheus:
    def __init__(self, directory, config_text):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = os.path.join(directory, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(directory, "prometheus.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + self.config,
             "--storage.tsdb.path=" + os.path.join(directory, "tsdb"),
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=directory)

    def api(self, path):
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def alerts(self, name=None, state=None):
        return [a for a in self.api("/api/v1/alerts")["alerts"]
                if (name is None or a["labels"]["alertname"] == name) and (state is None or a["state"] == state)]

    def query(self, expr):
        return self.api("/api/v1/query?query=" + urllib.request.quote(expr))["result"]

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def prometheus(tmp_path):
    started = []

    def start(config_text):
        d = tmp_path / f"prometheus-{len(started) + 1}"
        d.mkdir()
        p = Prometheus(str(d), config_text)
        started.append(p)
        return p
    yield start
    for p in started:
        p.stop()


def test_prometheus_scrapes_and_the_credentials_alert_fires_and_clears(env, archmerge, prometheus, tmp_path):
    token = secrets.token_urlsafe(16)
    secret_file = write_secret(str(tmp_path / "status.secret"), "Bearer " + token)
    am = archmerge(archmerge.config(server_extra={"status_secret_file": secret_file}))

    # The test's copy of the rules: the same expressions with a short `for:`.
    with open(RULES) as f:
        test_rules = yaml.safe_load(f)
    for g in test_rules["groups"]:
        for r in g["rules"]:
            if "for" in r:
                r["for"] = "2s"
    rules_copy = tmp_path / "archmerge-rules.yml"
    rules_copy.write_text(yaml.safe_dump(test_rules))
    token_file = write_secret(str(tmp_path / "status-token"), token)
    ca = tmp_path / "archmerge-ca.pem"
    shutil.copy(env.ca_file, ca)

    # The operator's configuration from the docs: only paths, target and intervals differ.
    conf = yaml.safe_load(docs_scrape_config()
                          .replace("/etc/prometheus/archmerge-rules.yml", str(rules_copy))
                          .replace("/etc/prometheus/archmerge-ca.pem", str(ca))
                          .replace("/etc/prometheus/archmerge-status-token", token_file)
                          .replace("archmerge.example.com:8443", f"127.0.0.1:{am.port}"))
    conf["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    prom = prometheus(yaml.safe_dump(conf))

    def scraped():
        assert prom.proc.poll() is None, "prometheus exited:\n" + prom.log_text()[-3000:]
        targets = prom.api("/api/v1/targets")["activeTargets"]
        assert [t["health"] for t in targets] == ["up"], targets
        return prom.query('archmerge_registry_credentials_ok{job="archmerge"} == 1')
    wait_until(scraped, 60, 0.5, message="prometheus never scraped archmerge with working credentials")
    # Healthy: several evaluations (1 s each, `for:` 2 s) later no alert is pending or firing.
    time.sleep(4)
    assert prom.alerts() == [], prom.alerts()

    # A wrong robot secret, reloaded: the background check (every 5 s) sees it rejected.
    archmerge._write_secret(archmerge.password_file, "wrong-" + env.robot_password)
    am.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: prom.alerts("ArchmergeRegistryCredentialsRejected", "firing"), 60, 0.5,
               message="ArchmergeRegistryCredentialsRejected did not fire")
    alert = prom.alerts("ArchmergeRegistryCredentialsRejected", "firing")[0]
    assert alert["labels"]["registry"] == env.harbor_host and alert["labels"]["severity"] == "critical"
    assert env.harbor_host in alert["annotations"]["summary"]
    assert alert["annotations"]["runbook_url"] == "docs/operation.md#archmergeregistrycredentialsrejected"
    # Only that one: the registry still answers, the scrape still works.
    assert {a["labels"]["alertname"] for a in prom.alerts()} == {"ArchmergeRegistryCredentialsRejected"}

    # The right secret again, reloaded: the alert clears.
    archmerge._write_secret(archmerge.password_file, env.robot_password)
    am.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: prom.alerts() == [], 60, 0.5,
               message="ArchmergeRegistryCredentialsRejected did not clear after the reload")
    assert prom.query('archmerge_registry_credentials_ok{job="archmerge"} == 1')
