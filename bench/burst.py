"""The burst: N groups x 2 events over HTTPS keep-alive (wrk, fsync on),
webhooks/s accepted, time until every index is published, archmerge's peak
RSS; then the floor probe making the same N indexes (same request mix,
archmerge's workers x max_concurrent) for the throughput ratio."""

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import time

import floor
from env import ROBOT, rss_kib, wait_until

LUA_TEMPLATE = r"""
-- Each event once: thread k of 2 sends bodies k, k+2, ...; past its share it
-- asks /healthz until the bench stops wrk (SIGINT) once archmerge's counter
-- says every webhook was answered.
local bodies = {}
for line in io.lines("@BODIES@") do bodies[#bodies + 1] = line end
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("id", #threads)
end
function init(args)
  mine = {}
  for k = id, #bodies, 2 do mine[#mine + 1] = bodies[k] end
  sent, bad, posts = 0, 0, 0
  -- wrk's main thread calls request() once on thread 1's state to verify it
  if id == 1 then sent = -1 end
  hdrs = {["Content-Type"] = "application/json", ["Authorization"] = "@AUTH@"}
end
request = function()
  sent = sent + 1
  if sent >= 1 and sent <= #mine then return wrk.format("POST", nil, hdrs, mine[sent]) end
  return wrk.format("GET", "/healthz", {})
end
response = function(status, headers, body)
  if status ~= 202 and status ~= 200 then bad = bad + 1 end
  if string.sub(body, 1, 1) == "{" then posts = posts + 1 end
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do io.write("BAD " .. t:get("bad") .. " webhooks " .. t:get("posts") .. "\n") end
end
"""


def webhooks_answered(conn):
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("archmerge_webhooks_total{"))


def answered(conn, base, want, t0, timeout):
    """Seconds from t0 until archmerge answered `want` more webhooks than base."""
    while time.perf_counter() - t0 < timeout:
        if webhooks_answered(conn) - base >= want:
            conn.close()
            return time.perf_counter() - t0
        time.sleep(0.01)
    conn.close()
    return None


def run(w, am, work, n, mode="tls", hold_registry=False):
    """hold_registry: the registry is stopped (SIGSTOP) while the webhooks arrive and
    continued once all are answered: archmerge's acceptance alone, without the
    registry's CPU for the publishing that otherwise runs alongside (2 cores)."""
    repo = "library/burst-held" if hold_registry else "library/burst"
    t0 = time.perf_counter()
    pairs = w.push_pairs(mode, repo, [f"3.{i}" for i in range(n)], lambda v: f"b{v}{repo}")
    push_s = time.perf_counter() - t0
    bodies = os.path.join(work, "bodies.txt")
    with open(bodies, "w") as f:
        for i in range(n):
            a, b = pairs[f"3.{i}"]
            for p, arch in ((a, "amd64"), (b, "arm64")):
                f.write(json.dumps(w.event(mode, repo, p.digest, f"3.{i}-{arch}")[0], separators=(",", ":")) + "\n")
    lua = os.path.join(work, "burst.lua")
    with open(lua, "w") as f:
        f.write(LUA_TEMPLATE.replace("@BODIES@", bodies).replace("@AUTH@", w.secret))
    rss_idle = rss_kib(am.pid)
    # The metrics poller connects from 127.0.0.2, like a scraper on another host: from
    # wrk's address it would hold one of that address's max_connections_per_client (16)
    # slots, and wrk's 16th connection would be shut at its handshake, again and again.
    conn = http.client.HTTPSConnection("127.0.0.1", am.port, timeout=10, source_address=("127.0.0.2", 0),
                                       context=ssl.create_default_context(cafile=w.pki.ca_cert))
    base = webhooks_answered(conn)
    held = w.regs[mode].proc if hold_registry else None
    if held is not None:
        held.send_signal(signal.SIGSTOP)
    t0 = time.perf_counter()
    wrk = subprocess.Popen(["wrk", "-t", "2", "-c", "16", "-d", "120s", "--latency", "-s", lua, am.webhook_url],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # wrk runs for its whole -d even when every thread stopped: archmerge's own
    # counter says when all 2n webhooks were answered, then wrk gets SIGINT.
    try:
        secs = answered(conn, base, 2 * n, t0, 60)
    finally:
        if held is not None:
            held.send_signal(signal.SIGCONT)
    wrk.send_signal(signal.SIGINT)
    wrk_out = wrk.communicate(timeout=30)[0]
    if secs is None:
        raise RuntimeError(f"burst: {2 * n} webhooks not answered; wrk:\n{wrk_out}")
    published = re.compile(r"group=\S+/" + re.escape(repo) + r":3\.(\d+) .*result=(?:published|unchanged)")
    wait_until(lambda: len(set(published.findall(am.log_text()))) >= n, 900, 0.2,
               message="burst: not every index was published")
    t_all = time.perf_counter() - t0
    rss_peak = rss_kib(am.pid, "VmHWM")
    log = am.log_text()
    m = re.search(r"Requests/sec:\s+([\d.]+)", wrk_out)
    total = re.search(r"(\d+) requests in", wrk_out)
    bad = sum(int(x) for x in re.findall(r"BAD (\d+)", wrk_out))
    failed = len(re.findall(re.escape(repo) + r":3\.\d+ .*result=(?:failed|refused)", log))
    wrong = 0
    for i in range(0, n, max(1, n // 50)):
        got = w.clients[mode].get_manifest(repo, f"3.{i}")
        if [d["digest"] for d in got.json["manifests"]] != [pairs[f"3.{i}"][0].digest, pairs[f"3.{i}"][1].digest]:
            wrong += 1
    if hold_registry:
        return {"rate": 2 * n / secs if secs else 0.0, "non2xx": bad, "failed": failed, "wrong": wrong,
                "t_all": t_all, "rss_peak": rss_peak}
    time.sleep(0.5)
    ours = [e for e in w.regs[mode].access_log("archmerge/", pings=False) if e[1].startswith(f"/v2/{repo}/")]
    # the floor probe: the same indexes, tags 3.N-floor, archmerge's concurrency
    ca = w.pki.ca_cert if mode == "tls" else None
    tok = floor.token_for(w.tokens.realm, ROBOT, w.users[ROBOT], repo, ca) if mode == "tls" else None
    floor_s = floor.burst(w.regs[mode].url, repo, [f"3.{i}" for i in range(n)], w.workers, w.max_concurrent,
                          ca, tok, target=lambda v: v + "-floor")
    floor_rc_s = None
    if w.recheck:
        floor_rc_s = floor.burst(w.regs[mode].url, repo, [f"3.{i}" for i in range(n)], w.workers,
                                 w.max_concurrent, ca, tok, target=lambda v: v + "-floor-rc", recheck=True)
    return {"n": n, "mode": mode, "push_s": push_s, "rate": 2 * n / secs if secs else 0.0, "wrk_rate": float(m.group(1)) if m else 0.0,
            "requests": int(total.group(1)) if total else 0, "non2xx": bad,
            "failed": failed, "wrong": wrong, "t_all": t_all, "rss_idle": rss_idle, "rss_peak": rss_peak,
            "floor_s": floor_s, "floor_rc_s": floor_rc_s, "reg_requests": len(ours), "wrk": wrk_out}
