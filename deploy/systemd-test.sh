#!/bin/sh
# `make verify-systemd`: runs deploy/archmerge.service under a real systemd
# (PID 1 of a systemd-nspawn container booted from a Debian bookworm root made
# with debootstrap) and checks that the hardened unit works with the built
# binary: dynamic user, no capabilities, seccomp filter, credentials handed
# over with mode 0400, state directory, HTTPS answers, reload and stop.
# Slow (the root is made once, then cached), needs root; not part of `make test`.
set -eu
cd "$(dirname "$0")/.."

BIN=${ARCHMERGE_BIN:-$PWD/archmerge}
CACHE=${ARCHMERGE_SYSROOT:-/var/tmp/archmerge-systemd-root.tar}
PORT=${SMOKE_PORT:-18445}
TMP=$(mktemp -d /tmp/archmerge-systemd.XXXXXX)
MOUNTED=""

cleanup() {
	[ -n "$MOUNTED" ] && umount "$MOUNTED" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

say() { printf '==> %s\n' "$*"; }

missing=""
for p in debootstrap systemd-container openssl; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing:$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -s "$CACHE" ]; then
	say "making a bookworm root with systemd (once; cached in $CACHE)"
	debootstrap --variant=minbase \
	    --include=systemd,systemd-sysv,dbus,procps,curl,ca-certificates,libcivetweb1,libcurl4,libjansson4,libconfig9,libssl3 \
	    bookworm "$TMP/build" http://deb.debian.org/debian >"$TMP/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$TMP/debootstrap.log"; exit 1; }
	rm -rf "$TMP"/build/var/cache/apt/archives/*.deb
	tar -C "$TMP/build" -cf "$CACHE.part" . && mv "$CACHE.part" "$CACHE"
	rm -rf "$TMP/build"
fi
R="$TMP/root"
mkdir -p "$R"
tar -C "$R" -xf "$CACHE"

# The installed layout of `make install` plus the unit, unchanged.
install -D -m 0755 "$BIN" "$R/usr/local/bin/archmerge"
install -D -m 0644 deploy/archmerge.8 "$R/usr/local/share/man/man8/archmerge.8"
set -- "$R"/usr/lib/*/libcrypto.so.3
ln -sf libcrypto.so.3 "${1%.3}"          # what libssl-dev would provide; see Dockerfile
install -D -m 0644 deploy/archmerge.service "$R/etc/systemd/system/archmerge.service"
mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/archmerge.service "$R/etc/systemd/system/multi-user.target.wants/"

# Configuration as README describes it for systemd: secrets root-only in
# /etc/archmerge, named in the configuration by their credential path.
E="$R/etc/archmerge"
mkdir -p "$E/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=archmerge \
    -keyout "$E/tls/server.key" -out "$E/tls/server.crt" 2>/dev/null
SECRET="Bearer systemd-test-$(openssl rand -hex 8)"
printf '%s\n' "$SECRET" >"$E/webhook-secret"
printf 'not-a-real-password\n' >"$E/robot-secret"
chmod 600 "$E/tls/server.key" "$E/webhook-secret" "$E/robot-secret"
C=/run/credentials/archmerge.service
cat >"$E/archmerge.conf" <<EOF
server = {
  listen = "127.0.0.1:$PORT";
  tls = { certificate = "/etc/archmerge/tls/server.crt"; private_key = "$C/server.key"; };
  webhook_secret_file = "$C/webhook-secret";
};
registries = ( { host = "harbor.example.com"; url = "https://127.0.0.1:9";
                 username = "robot\$library+archmerge"; password_file = "$C/robot-secret"; } );
rules = ( { name = "t"; repositories = [ "library/*" ]; source = "{repo}:{version}-{arch}";
            target = "{repo}:{version}"; architectures = [ "amd64", "arm64" ]; } );
EOF
chmod 644 "$E/archmerge.conf"

# The checks run inside the container as a unit ordered after archmerge; the
# results land in /root/result, then the container powers off.
printf 'PORT=%s\nSECRET="%s"\nC=%s\n' "$PORT" "$SECRET" "$C" >"$R/root/unit-test.env"
cat >"$R/usr/local/bin/archmerge-unit-test" <<'EOF'
#!/bin/sh
exec >/root/result 2>&1
. /root/unit-test.env
u=https://127.0.0.1:$PORT
i=0
until curl -sk -o /dev/null "$u/"; do i=$((i + 1)); [ $i -gt 150 ] && break; sleep 0.2; done
ok() { if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: got '$2', want '$3'"; fi; }
pid=$(systemctl show -p MainPID --value archmerge)
field() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; }
uid=$(field Uid)
ok "service active" "$(systemctl is-active archmerge)" active
ok "runs as a dynamic user (uid $uid)" "$([ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] && echo yes)" yes
ok "no capabilities (bounding set)" "$(field CapBnd)" 0000000000000000
ok "no capabilities (effective)" "$(field CapEff)" 0000000000000000
ok "no_new_privs" "$(field NoNewPrivs)" 1
ok "seccomp filter" "$(field Seccomp)" 2
ok "credential mode and owner" "$(stat -c %a:%u "$C/webhook-secret")" "400:$uid"
ok "state directory mode and owner" "$(stat -L -c %a:%u /var/lib/archmerge)" "700:$uid"
ok "HTTPS webhook with a wrong secret" "$(curl -sk -o /dev/null -w '%{http_code}' -X POST \
    -H 'Authorization: Bearer wrong' -H 'Content-Type: application/json' --data '{}' "$u/hooks/harbor")" 401
ok "HTTPS webhook with the secret, not a push" "$(curl -sk -o /dev/null -w '%{http_code}' -X POST \
    -H "Authorization: $SECRET" -H 'Content-Type: application/json' \
    --data '{"type":"PULL_ARTIFACT","occur_at":1,"event_data":{"resources":[],"repository":{"name":"a","namespace":"library","repo_full_name":"library/a"}}}' \
    "$u/hooks/harbor")" 200
echo "info GET /healthz: HTTP $(curl -sk -o /dev/null -w '%{http_code}' "$u/healthz")"
systemctl reload archmerge || true
sleep 1
ok "still running, same process, after reload (SIGHUP)" \
    "$(systemctl is-active archmerge) $(systemctl show -p MainPID --value archmerge)" "active $pid"
systemctl start archmerge
sleep 1
systemctl stop archmerge
ok "stop (SIGTERM) exits cleanly" "$(systemctl show -p Result --value archmerge)" success
echo "---- journal"
journalctl --no-pager -u archmerge | tail -n 20
systemctl poweroff
EOF
chmod 755 "$R/usr/local/bin/archmerge-unit-test"
cat >"$R/etc/systemd/system/archmerge-unit-test.service" <<'EOF'
[Unit]
After=archmerge.service
Wants=archmerge.service
[Service]
Type=oneshot
ExecStart=/usr/local/bin/archmerge-unit-test
[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/archmerge-unit-test.service "$R/etc/systemd/system/multi-user.target.wants/"

# systemd-nspawn refuses to clean its propagation directory when /run is not
# a tmpfs (as in some sandboxes); give it one there.
if [ "$(stat -f -c %T /run)" != tmpfs ]; then
	mkdir -p /run/systemd/nspawn
	if [ "$(stat -f -c %T /run/systemd/nspawn)" != tmpfs ]; then
		mount -t tmpfs tmpfs /run/systemd/nspawn
		MOUNTED=/run/systemd/nspawn
	fi
fi
say "booting systemd in a container with the unit"
timeout 300 systemd-nspawn --register=no --keep-unit -q -D "$R" -b >"$TMP/boot.log" 2>&1 ||
	{ tail -n 30 "$TMP/boot.log"; exit 1; }
[ -s "$R/root/result" ] || { echo "no result"; tail -n 30 "$TMP/boot.log"; exit 1; }
cat "$R/root/result"
! grep -q '^FAIL' "$R/root/result"
