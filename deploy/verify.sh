#!/bin/sh
# `make verify-deploy` (part of `make test`): fast checks of everything in
# deploy/ that need neither a cluster nor a container engine nor systemd as
# PID 1. Slower proofs: `make image` (buildah build + run) and
# `make verify-systemd` (the unit under a real systemd in systemd-nspawn).
set -eu
cd "$(dirname "$0")/.."
BIN=${1:-./archmerge}
TMP=$(mktemp -d /tmp/archmerge-verify.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
fail() { echo "verify-deploy: $*" >&2; exit 1; }

# 1. The man page renders without a single warning.
out=$(groff -man -ww -z deploy/archmerge.8 2>&1) || fail "groff failed: $out"
[ -z "$out" ] || fail "groff warnings: $out"
echo "man page: groff -man -ww -z clean"

# 2. make install honours DESTDIR and PREFIX.
make -s install DESTDIR="$TMP/root" PREFIX=/usr/local ARCHMERGE_INSTALL_BIN="$BIN" >/dev/null
for f in usr/local/bin/archmerge:755 usr/local/share/man/man8/archmerge.8:644; do
	p="$TMP/root/${f%:*}"
	[ -f "$p" ] || fail "make install did not create /${f%:*}"
	[ "$(stat -c %a "$p")" = "${f#*:}" ] || fail "/${f%:*} has mode $(stat -c %a "$p"), want ${f#*:}"
done
"$TMP/root/usr/local/bin/archmerge" --version >/dev/null || fail "installed binary does not run"
echo "make install DESTDIR=... PREFIX=/usr/local: binary and man page installed"

# 3. systemd accepts the unit. verify needs the ExecStart binary to exist and
# looks up Documentation=man:archmerge(8), so point both at the tree installed
# above; nothing else of the unit changes.
sed "s#/usr/local/bin/archmerge#$TMP/root/usr/local/bin/archmerge#" deploy/archmerge.service >"$TMP/archmerge.service"
out=$(MANPATH="$TMP/root/usr/local/share/man" systemd-analyze verify "$TMP/archmerge.service" 2>&1) ||
	fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify printed: $out"
echo "systemd-analyze verify archmerge.service: no complaints"
# Exposure as systemd rates it (0 = locked down, 10 = unprotected); keep it low.
systemd-analyze security --offline=true --threshold=20 "$TMP/archmerge.service" >"$TMP/security" 2>&1 ||
	{ grep -E '✗|Overall' "$TMP/security" >&2; fail "systemd-analyze security exposure above 2.0"; }
grep -o 'Overall exposure level.*' "$TMP/security" | sed 's/^/systemd-analyze security: /'

# 4. Kubernetes manifests and compose.yaml (structure, promises, and the
# ConfigMap's configuration through check-config).
/usr/bin/python3 deploy/verify.py "$BIN"
# The alerting rules load in Prometheus' own checker (their unit tests run in
# tests/integration/test_prometheus.py).
out=$(promtool check rules deploy/prometheus/archmerge-rules.yml 2>&1) || fail "promtool check rules: $out"
echo "promtool check rules: $(echo "$out" | grep -o '[0-9]* rules found')"
# The Compose file against the Compose schema (docker-compose needs no daemon
# for this; the bind sources need not exist).
HARBOR_CA_FILE=/dev/null docker-compose -f deploy/compose.yaml config -q ||
	fail "docker-compose rejects deploy/compose.yaml"
echo "docker-compose config: compose.yaml valid"

# 5. The minimal configuration passes check-config once deploy/make-secrets.sh
# has created the files it names, with the modes archmerge requires.
mkdir -p "$TMP/min"
ROBOT_SECRET=s3cret sh deploy/make-secrets.sh "$TMP/min" archmerge.example 2>/dev/null ||
	fail "deploy/make-secrets.sh failed"
for f in webhook-secret robot-secret tls/server.key; do
	[ "$(stat -c %a "$TMP/min/$f")" = 600 ] || fail "make-secrets.sh: $f is not mode 0600"
done
sed "s#/etc/archmerge#$TMP/min#g" deploy/archmerge.minimal.conf > "$TMP/min/archmerge.conf"
"$BIN" check-config -c "$TMP/min/archmerge.conf" | grep -q '^configuration OK$' ||
	fail "deploy/archmerge.minimal.conf with make-secrets.sh's files fails check-config"
echo "minimal config + make-secrets.sh: configuration OK"
