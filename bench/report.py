"""The bench's markdown report: one table per-index per tool and mode, the
ratios, requests per index, the burst, and the targets of issue 14."""

import datetime
import os
import statistics

from latency import stats


def _f(x, fmt="{:.1f}"):
    return "-" if x is None else fmt.format(x)


def curl_timing(log, title="archmerge, debug log", between=None):
    """Medians of libcurl's breakdown per method from archmerge's debug `registry request` lines;
    between: (t0, t1) wall-clock seconds, only the lines logged in that span."""
    import re
    from env import log_time
    rows = {}
    tokens = 0
    for line in log.splitlines():
        if between and not between[0] <= (log_time(line) or 0) <= between[1]:
            continue
        if "registry token" in line and "scope=repository" in line:
            tokens += 1      # a worker's token fetch (the checks' ones ask for no repository)
        if "registry request" not in line or "total_us=" not in line:
            continue
        if " path=/v2/ " in line:
            continue     # the background registry checks' pings, on clients of their own
        f = dict(re.findall(r"(\w+)=(\S+)", line))
        key = (f.get("method"), f.get("new_conns") != "0")
        rows.setdefault(key, []).append({k: int(f[k]) for k in ("dns_us", "connect_us", "tls_us", "sent_us",
                                                                  "first_byte_us", "total_us") if k in f})
    if not rows:
        return []
    L = [f"## libcurl timing per registry request ({title}, median us)", "",
         "| method | new connection | n | dns | connect | tls | request sent | first byte | total |",
         "|---|---|---|---|---|---|---|---|---|"]
    for (method, new), xs in sorted(rows.items()):
        med = {k: statistics.median(x[k] for x in xs) for k in xs[0]}
        L.append(f"| {method} | {'yes' if new else 'no'} | {len(xs)} | " + " | ".join(
            f"{med.get(k, 0):.0f}" for k in ("dns_us", "connect_us", "tls_us", "sent_us", "first_byte_us",
                                              "total_us")) + " |")
    return L + ["", f"Token fetches by the workers in this span: {tokens}.", ""]


def floor_key(w, heat):
    """The parallel floor that makes archmerge's own requests: with the re-check HEADs unless single writer."""
    return f"fl-rc-{heat}" if w.recheck else f"fl-par-{heat}"


def render(w, args, results, lat, b, elapsed, timing=None, spaced=None):
    L = []
    now = datetime.datetime.now(datetime.timezone.utc)
    L.append(f"# archmerge benchmark, {now:%Y-%m-%d %H:%M} UTC")
    L.append("")
    try:
        load = open("/proc/loadavg").read().split()[:3]
    except OSError:
        load = ["?"]
    L.append(f"Machine: {os.cpu_count()} cores, load average at the end {' '.join(load)}. Registries: "
             "docker-registry on 127.0.0.1, `plain` (HTTP, no auth) and `tls` (TLS + bearer token). "
             f"{args.indexes} indexes x {args.repeats} repeats per tool and mode, round-robin, order rotated. "
             f"archmerge workers={w.workers}, max_concurrent={w.max_concurrent}. Run took {elapsed:.0f} s.")
    L.append("")
    L.append("archmerge is timed from the webhook's 202 to its `published` log line (log clock, ms "
             "resolution); the floor probe and the peers by wall clock around their requests/commands.")
    L.append("")
    modes = list(results)
    med = {}
    for mode in modes:
        for t in results[mode]:
            med[(mode, t.key)] = stats(t.samples)[0]
    hdr = "| per 2-arch index | " + " | ".join(f"{m}: median (min-max) ms | x archmerge | x par. floor"
                                              for m in modes) + " |"
    L.append(hdr)
    L.append("|---|" + "---|---|---|" * len(modes))
    keys = [t.key for t in results[modes[0]]]
    names = {t.key: t.name for t in results[modes[0]]}
    for key in keys:
        cells = []
        for mode in modes:
            t = next(t for t in results[mode] if t.key == key)
            if t.note:
                cells += [t.note, "", ""]
                continue
            m, lo, hi = stats(t.samples)
            warm = key.endswith("warm")
            am = med.get((mode, "am-warm" if warm else "am-cold"))
            fl = med.get((mode, floor_key(w, "warm" if warm else "cold")))
            cells += [f"{m:.1f} ({lo:.1f}-{hi:.1f})", f"{m / am:.2f}x" if am else "-",
                      f"{m / fl:.2f}x" if fl else "-"]
        L.append(f"| {names[key]} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("Ratios are medians divided: `x archmerge` = this / archmerge (same cold/warm), "
             "`x par. floor` = this / the parallel floor probe making archmerge's requests (same cold/warm"
             + (", with the re-check HEADs)." if w.recheck else ")."))
    L.append("")
    L.append("| registry requests per index (access log) | " + " | ".join(modes) + " |")
    L.append("|---|" + "---|" * len(modes))
    for key, name in (("am-cold", "archmerge cold"), ("am-warm", "archmerge warm")):
        cells = []
        for mode in modes:
            c = lat.requests.get((mode, key), [])
            cells.append(f"{statistics.median(c):.0f} (min {min(c)}, max {max(c)})" if c else "-")
        L.append(f"| {name} | " + " | ".join(cells) + " |")
    L.append("")
    for (mode, key), reqs in sorted(getattr(lat, "request_list", {}).items()):
        L.append(f"- {mode} {key}: " + ", ".join(reqs))
    L.append("")
    if timing:
        L += timing
    if spaced:
        L += spaced[1]
    if b:
        L += burst_lines(w, b)
    L += target_lines(w, modes, med, lat, b)
    if spaced:
        import spaced as spaced_mod
        L += [f"| {n} | {v} | {'yes' if ok else 'no'} |" for n, v, ok in spaced_mod.target_lines(spaced[0])]
    if b:
        L.append("")
        L.append("wrk output:\n\n```\n" + b["wrk"].strip() + "\n```")
    return "\n".join(L) + "\n"


def burst_lines(w, b):
    L = [f"## Burst: {b['n']} groups x 2 events ({b['mode']} registry)", ""]
    fl_rate = b["n"] / b["floor_s"]
    am_rate = b["n"] / b["t_all"]
    L.append("| measure | value |")
    L.append("|---|---|")
    L.append(f"| webhooks accepted/s (wrk, 2 threads, 16 HTTPS keep-alive connections, fsync on, each event once) "
             f"| {b['rate']:.0f}/s |")
    h = b.get("held")
    if h:
        L.append(f"| the same, registry stopped (SIGSTOP) until all were answered: acceptance alone "
                 f"| {h['rate']:.0f}/s (then published in {h['t_all']:.2f} s; {h['non2xx']} non-202, "
                 f"{h['failed']} failed, {h['wrong']} wrong) |")
    L.append(f"| non-202 answers / failed or refused assemblies / wrong children (sampled) "
             f"| {b['non2xx']} / {b['failed']} / {b['wrong']} |")
    L.append(f"| archmerge: first webhook -> every index published | {b['t_all']:.2f} s ({am_rate:.1f} indexes/s) |")
    L.append(f"| floor probe, same indexes, {w.workers} at once, <= {w.max_concurrent} requests in flight "
             f"| {b['floor_s']:.2f} s ({fl_rate:.1f} indexes/s) |")
    if b["floor_rc_s"]:
        L.append(f"| floor probe with the default's 8 requests (source re-check HEADs after the PUT) "
                 f"| {b['floor_rc_s']:.2f} s ({b['n'] / b['floor_rc_s']:.1f} indexes/s) |")
    L.append(f"| publish time archmerge / floor (6 requests) | {b['t_all'] / b['floor_s']:.2f}x |")
    if b["floor_rc_s"]:
        L.append(f"| publish time archmerge / floor (8 requests) | {b['t_all'] / b['floor_rc_s']:.2f}x |")
    L.append(f"| archmerge registry requests in the burst | {b['reg_requests']} ({b['reg_requests'] / b['n']:.2f} "
             "per index) |")
    L.append(f"| archmerge RSS idle / peak (VmHWM) | {b['rss_idle'] / 1024:.1f} / {b['rss_peak'] / 1024:.1f} MiB |")
    L.append("")
    return L


def target_lines(w, modes, med, lat, b):
    L = ["## Targets (issue 14)", "", "| target | measured | met |", "|---|---|---|"]

    def row(name, value, ok):
        L.append(f"| {name} | {value} | {'yes' if ok else 'no'} |")
    for mode in modes:
        for heat in ("cold", "warm"):
            am, fl = med.get((mode, f"am-{heat}")), med.get((mode, floor_key(w, heat)))
            what = "with the re-check HEADs" if w.recheck else "single writer"
            if am and fl:
                row(f"archmerge <= 1.0x parallel floor (same requests, {what}), {mode} {heat}",
                    f"{am / fl:.2f}x", am <= fl)
            par = med.get((mode, f"fl-par-{heat}"))
            if am and par and w.recheck:
                row(f"(against the floor without the re-check HEADs, 2 requests fewer), {mode} {heat}",
                    f"{am / par:.2f}x", am <= par)
        mt = med.get((mode, "manifesttool"))
        am = med.get((mode, "am-cold"))
        if mt and am:
            goal = 3 if mode == "plain" else 10
            row(f"manifest-tool / archmerge >= {goal}x, {mode}", f"{mt / am:.1f}x", mt / am >= goal)
        extra = 2 if w.recheck else 0     # the two source re-check HEADs
        for key, goal in (("am-cold", 6 + extra), ("am-warm", 4 + extra)):
            c = lat.requests.get((mode, key))
            if c:
                row(f"requests per index {key[3:]} == {goal}, {mode}", f"{min(c)}-{max(c)}",
                    min(c) == max(c) == goal)
    if b:
        r = b["t_all"] / b["floor_s"]
        row("burst publish time <= 1.3x floor", f"{r:.2f}x", r <= 1.3)
        if b["floor_rc_s"]:
            r8 = b["t_all"] / b["floor_rc_s"]
            row("(same, against the floor with the default's re-check HEADs)", f"{r8:.2f}x", r8 <= 1.3)
        row("burst >= 5,000 webhooks/s accepted", f"{b['rate']:.0f}/s", b["rate"] >= 5000)
        h = b.get("held")
        if h:
            row("(same, registry stopped while they arrive: archmerge's acceptance alone)", f"{h['rate']:.0f}/s",
                h["rate"] >= 5000)
            row("(that burst: 0 errors, every index right)", f"{h['non2xx'] + h['failed'] + h['wrong']}",
                h["non2xx"] + h["failed"] + h["wrong"] == 0)
        row("burst: 0 errors, every index right", f"{b['non2xx'] + b['failed'] + b['wrong']}",
            b["non2xx"] + b["failed"] + b["wrong"] == 0)
        row("peak RSS < 24 MiB", f"{b['rss_peak'] / 1024:.1f} MiB", b["rss_peak"] < 24 * 1024)
    return L


def scale_text(lines):
    """The scale section (bench/scale.py) as report text."""
    return "\n".join(lines) + "\n"
