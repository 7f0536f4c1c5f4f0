"""Readiness is local; registry checks run in the background (issue 9 points 2
and 3, issue 11 first bullet). The real binary, the real registry, the real
token service; faults come from the fault proxy, a full tmpfs and SIGHUP."""

import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from harness import webhook
from harness.faultproxy import FaultProxy
from harness.util import wait_until

from test_observe import get, parse_metrics, value


@pytest.fixture
def proxy(env):
    p = FaultProxy(env.registry.url, env.ca_file, env.pki.server.cert, env.pki.server.key).start()
    try:
        yield p
    finally:
        p.stop()


def config_via(archmerge, proxy, **kw):
    regs = [dict(r, url=proxy.url) for r in archmerge.registries]
    return archmerge.config(registries=regs, **kw)


def reg_check(am, env):
    """The registry check of /readyz, or None before the first background round."""
    r = get(am.url + "/readyz", env.ca_file)
    for c in r.data["checks"]:
        if c["name"] == f"registry {env.harbor_host}":
            return r.status, c
    return r.status, None


def gauges(am, env):
    fams = parse_metrics(get(am.url + "/metrics", env.ca_file).body.decode())
    return (value(fams, "archmerge_registry_up", registry=env.harbor_host),
            value(fams, "archmerge_registry_credentials_ok", registry=env.harbor_host),
            value(fams, "archmerge_journal_pending"))


def pending(am, env):
    fams = parse_metrics(get(am.url + "/metrics", env.ca_file).body.decode())
    return value(fams, "archmerge_journal_pending")


def journal_failing(am, env):
    fams = parse_metrics(get(am.url + "/metrics", env.ca_file).body.decode())
    return value(fams, "archmerge_journal_failing")


def fake_digest(i):
    return "sha256:" + ("%064x" % (0xabc000 + i))


def test_readyz_answers_from_state_while_the_registry_hangs(env, archmerge, proxy):
    proxy.set_mode("hang")        # TLS accepted, no answer ever
    # 85 connections at once from one address: over the per-client cap (16),
    # which test_attacks.py covers; here only readiness is under test.
    am = archmerge(config_via(archmerge, proxy, server_extra={"max_connections_per_client": 0}))

    def timed(url, payload=None):
        t0 = time.monotonic()
        if payload is None:
            st = get(url, env.ca_file).status
        else:
            st = am.send(*payload)[0]
        return st, time.monotonic() - t0

    with concurrent.futures.ThreadPoolExecutor(max_workers=90) as ex:
        probes = [ex.submit(timed, am.url + "/readyz") for _ in range(80)]
        hooks = [ex.submit(timed, None, webhook.push_event("library/hang", fake_digest(i), f"h{i}-amd64"))
                 for i in range(5)]
        probe_res = [f.result(timeout=60) for f in probes]
        hook_res = [f.result(timeout=60) for f in hooks]
    worst_probe = max(d for _, d in probe_res)
    worst_hook = max(d for _, d in hook_res)
    print(f"80 /readyz: worst {worst_probe:.3f}s; 5 webhooks: worst {worst_hook:.3f}s")
    assert all(st == 200 for st, _ in probe_res), probe_res
    assert worst_probe < 2.0, probe_res
    assert all(st == 202 for st, _ in hook_res), hook_res
    assert worst_hook < 2.0, hook_res

    # The background check reports the registry failing, without failing readiness.
    wait_until(lambda: reg_check(am, env)[1] is not None, 20, message="no registry check reported")
    st, c = reg_check(am, env)
    assert st == 200 and c["ok"] is False and c["fatal"] is False and c["error"], c
    wait_until(lambda: gauges(am, env)[:2] == (0, 0), 10, message="registry gauges did not turn 0")
    regs = get(am.url + "/status", env.ca_file).data["registries"]
    assert regs[0]["host"] == env.harbor_host and regs[0]["reachable"] is False
    assert regs[0]["credentials_ok"] is False and regs[0]["last_error"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", regs[0]["checked"])
    page = get(am.url + "/ui", env.ca_file).body.decode()
    assert 'id="registries"' in page and env.harbor_host in page

    # Registry back: checks turn green, gauges 1.
    proxy.set_mode("pass")
    wait_until(lambda: gauges(am, env)[:2] == (1, 1), 30, message="gauges did not turn 1")
    assert reg_check(am, env)[1]["ok"] is True


def test_full_state_dir_fails_readiness_and_leaves_nothing_behind(env, archmerge, proxy, tmp_path):
    state = tmp_path / "small"
    state.mkdir(mode=0o700)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(state)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs as state_dir (needs root): {p.stderr.strip()}")
    try:
        proxy.set_mode("hang")    # nothing finishes: pending is what was journaled
        am = archmerge(config_via(archmerge, proxy, state_dir=str(state)))
        wait_until(lambda: get(am.url + "/readyz", env.ca_file).status == 200, 15)
        filler = state / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        # Appends may still fit in the journal file's last page; then they fail.
        codes = [am.send(*webhook.push_event("library/full", fake_digest(i), f"f{i}-amd64"))[0]
                 for i in range(200)]
        assert 503 in codes, codes
        accepted = codes.index(503)
        assert set(codes[accepted:]) == {503}, codes
        print(f"accepted before full: {accepted}; refused: {len(codes) - accepted}")
        wait_until(lambda: get(am.url + "/readyz", env.ca_file).status == 503, 15,
                   message="/readyz stayed 200 with state_dir full")
        r = get(am.url + "/readyz", env.ca_file)
        assert "state_dir" in r.data["failing"] or "journal" in r.data["failing"], r.body
        assert pending(am, env) == accepted     # refused appends left nothing pending
        assert journal_failing(am, env) == 1    # what ArchmergeJournalFailing reads

        os.unlink(filler)
        wait_until(lambda: get(am.url + "/readyz", env.ca_file).status == 200, 15,
                   message="/readyz did not recover after freeing space")
        codes = [am.send(*webhook.push_event("library/full", fake_digest(100 + i), f"g{i}-amd64"))[0]
                 for i in range(3)]
        assert codes == [202] * 3, codes
        assert journal_failing(am, env) == 0
        assert pending(am, env) == accepted + 3
        assert get(am.url + "/status", env.ca_file).data["journal_pending"] == accepted + 3
        # The first append that worked again queued every pending group again (issue 22.5):
        # a group left pending while appends failed is run and written done, never stuck.
        assert re.search(rf"journal result=recovered queued_again={accepted + 1}\b", am.log_text()), \
            am.log_text()[-3000:]
        proxy.set_mode("pass")
        # Each group waits for its missing arm64, is looked at again, then done: the gauge
        # comes down to 0 with the queue, without a restart.
        wait_until(lambda: pending(am, env) == 0, 90,
                   message="archmerge_journal_pending did not come down once the registry answered")
        am.stop()
    finally:
        subprocess.run(["umount", "-l", str(state)], capture_output=True)


def test_reload_with_rotated_password_reaches_reconcile_and_checks(env, archmerge, admin_client, token_service):
    """Rotate the robot password at the token service and in password_file, SIGHUP:
    the periodic reconcile and the background check use the new one; then a wrong one."""
    repo = "library/rotated"
    user, old = env.robot_user, env.robot_password
    am = archmerge(archmerge.config(extra={"reconcile": {"repositories": [repo], "interval_s": 2,
                                                         "on_start": False}}))
    wait_until(lambda: (reg_check(am, env)[1] or {}).get("ok") is True, 20,
               message="credentials never reported ok")
    new = old + "-rotated"
    try:
        token_service.users[user] = new
        archmerge._write_secret(archmerge.password_file, new)
        am.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: re.search(r"reload file=\S+ result=ok", am.log_text()), 20)
        # Pushed without any webhook: only the periodic reconcile can publish it.
        admin_client.push_image(repo, "9.1-amd64", arch="amd64", salt="rotated")
        admin_client.push_image(repo, "9.1-arm64", arch="arm64", salt="rotated")
        wait_until(lambda: admin_client.get_manifest(repo, "9.1"), 30,
                   message="reconcile did not publish after the reload (startup password?)")
        wait_until(lambda: reg_check(am, env)[1]["ok"] is True, 20)
        wait_until(lambda: gauges(am, env)[:2] == (1, 1), 10, message="registry gauges did not turn 1")

        # A reload with a wrong secret shows in the background check; readiness stays 200.
        archmerge._write_secret(archmerge.password_file, "wrong-" + new)
        am.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: gauges(am, env)[:2] == (1, 0), 30,
                   message="a wrong password after reload did not show as credentials_ok 0")
        st, c = reg_check(am, env)
        assert st == 200 and c["ok"] is False and "wrong-" not in c["error"]
    finally:
        token_service.users[user] = old
