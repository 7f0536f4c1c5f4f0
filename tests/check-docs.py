#!/usr/bin/python3
"""make check-docs: the docs name what the binary accepts and exports.

Options: read from the parser (server/cmd/*.c: args_opt(a, "--x") inside each
cmd_* function, a->dry_run / a->json, and the strcmp()s in parse_args/main);
each must appear in `archmerge --help`, `archmerge CMD --help`, the man page
and docs/commands.md. Config keys: every { "key", K_... } row of
config/config.c must be a row of docs/configuration.md. Metrics: every
archmerge_* family a live instance exports (the binary started briefly on
loopback, plain HTTP, against an unreachable registry) and every one named in
the sources must be in docs/operation.md's metrics table, and vice versa.
Troubleshooting: every message README quotes as archmerge's is text the
sources write.
Prints each drift on its own line; exit 1 when there is any.
"""
import re, subprocess, sys, glob, os, socket, tempfile, time, urllib.request

BIN = os.environ.get("ARCHMERGE_BIN", "./archmerge")
drift = []
def src(p): return open(p).read()

# --- options per command
main = src("server/cmd/main.c")
cmds = re.findall(r'\{ "([a-z-]+)", (cmd_[a-z_]+), 1,', main)
bodies = {}
for f in glob.glob("server/cmd/*.c"):
    for m in re.finditer(r'^(cmd_[a-z_]+)\(.*?\n\{\n(.*?)\n\}', src(f), re.S | re.M):
        bodies[m.group(1)] = m.group(2)
man = re.sub(r"\\f[BIRP]", "", src("deploy/archmerge.8")).replace("\\-", "-")
ref = src("docs/commands.md")
top = subprocess.run([BIN, "--help"], capture_output=True, text=True).stdout
common = ["-c", "--config", "-h", "--help"]
for name, fn in cmds:
    body = bodies.get(fn, "")
    opts = set(re.findall(r'args_opt(?:_nth)?\(a, "(--[a-z-]+)"', body))
    if "a->dry_run" in body: opts.add("--dry-run")
    if "a->json" in body: opts.add("--json")
    if "a->check" in body: opts.add("--check")
    chelp = subprocess.run([BIN, name, "--help"], capture_output=True, text=True).stdout
    for o in sorted(opts) + common:
        pat = re.compile(r'(?<![\w-])' + re.escape(o) + r'(?![\w-])')
        for where, text in (("archmerge --help", top), ("archmerge %s --help" % name, chelp),
                            ("deploy/archmerge.8", man), ("docs/commands.md", ref)):
            if o in common and where == "archmerge --help" and o in ("-c",):
                pass
            if not pat.search(text):
                drift.append("option %s of %s missing from %s" % (o, name, where))
for w in ("help", "version", "--version", "-h", "--config"):
    for where, text in (("archmerge --help", top), ("deploy/archmerge.8", man), ("docs/commands.md", ref)):
        if not re.search(r'(?<![\w-])' + re.escape(w) + r'(?![\w-])', text):
            drift.append("%s missing from %s" % (w, where))

# --- configuration keys
conf = src("docs/configuration.md")
rows = {m.group(1): m.group(2) for m in re.finditer(r'^\| `([a-z_.]+)` \|[^|]*\| ([^|]*) \|', conf, re.M)}
for key in re.findall(r'\{ "([a-z_]+)", K_[A-Z]+', src("config/config.c")):
    hit = [k for k in rows if k == key or k.endswith("." + key) or k.startswith(key + ".") or ("." + key + ".") in k]
    if not hit:
        drift.append("config key %s missing from docs/configuration.md" % key)
    elif not any(rows[k].strip() for k in hit):
        drift.append("config key %s has no default in docs/configuration.md" % key)

# --- metrics
code = "".join(src(f) for f in glob.glob("server/**/*.c", recursive=True))
have = set(re.findall(r'"(archmerge_[a-z_]+?)(?:_bucket|_sum|_count)?[" {]', code))


def live_families():
    """The metric families a running instance exports (None: it could not be started)."""
    with tempfile.TemporaryDirectory() as d:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        conf = os.path.join(d, "a.conf")
        with open(conf, "w") as f:
            f.write('state_dir = "%s/state";\nserver = { listen = "127.0.0.1:%d"; plain_http = true; '
                    'allow_unauthenticated = true; };\nregistries = ( { host = "r.example"; '
                    'url = "http://127.0.0.1:9"; } );\nrules = ( { name = "r"; repositories = [ "library/*" ]; '
                    'source = "{repo}:{version}-{arch}"; target = "{repo}:{version}"; '
                    'architectures = [ "amd64" ]; } );\n' % (d, port))
        p = subprocess.Popen([BIN, "serve", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2).read().decode()
                    return set(re.findall(r"^# TYPE (archmerge_[a-z_]+) ", text, re.M))
                except OSError:
                    time.sleep(0.1)
            return None
        finally:
            p.terminate()
            p.wait(10)


live = live_families()
if live is None:
    drift.append("could not start %s serve to read its /metrics" % BIN)
else:
    have |= live
ops = src("docs/operation.md")
table = set(re.findall(r'^\| `(archmerge_[a-z_]+)`', ops, re.M))
for m in sorted(have - table): drift.append("metric %s missing from docs/operation.md" % m)
for m in sorted(table - have): drift.append("metric %s in docs/operation.md is not exported" % m)
for m in sorted((live or set()) - table): drift.append("metric %s (exported live) missing from docs/operation.md" % m)

# --- log and error messages quoted in README's troubleshooting table
# What follows "archmerge:" (or a check-config / serve row) in backticks must be
# text the product writes: each literal fragment (split at "..." and at quoted
# values) is looked up in the C sources. Messages of libcurl, OpenSSL and
# CivetWeb that archmerge passes on are listed as third-party.
THIRD_PARTY = ("SSL peer certificate or SSH remote key was not OK", "SSL certificate problem",
               "unable to get local issuer certificate", "SSL connect error", "wrong version number",
               "error loading library", "Failed to locate executable")
csrc = "".join(src(f) for f in glob.glob("**/*.c", recursive=True)
               if f.split("/")[0] in ("server", "handlers", "registry", "config")).replace('\\"', '"')
readme = src("README.md")
trouble = readme[readme.find("## Troubleshooting"):]
for row in re.findall(r"^\|(.*?)\|", trouble, re.M)[2:]:
    quotes = []
    for part in re.split(r"archmerge:|archmerge logs", row)[1:]:
        quotes += re.findall(r"`([^`]+)`", part)
    m = re.match(r"\s*`(check-config|serve)`[^`]*`([^`]+)`", row)
    if m:
        quotes.append(m.group(2))
    for q in quotes:
        for frag in re.split(r'\.\.\.|"[^"]*"|\b[a-z_]+=\S*', q):
            frag = frag.strip(" :;,()")
            if len(frag) < 8 or any(t in frag or frag in t for t in THIRD_PARTY):
                continue
            # values (paths, platforms, numbers, URLs) are the example's, not the source's
            for piece in re.split(r"\s*\S*[/:0-9]\S*\s*", frag):
                if len(piece) >= 8 and piece not in csrc:
                    drift.append("troubleshooting quotes %r, which no source file writes" % piece)

for d in drift: print("check-docs: " + d)
sys.exit(1 if drift else 0)
