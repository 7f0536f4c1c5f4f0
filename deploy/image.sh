#!/bin/sh
# `make image`: builds deploy/Dockerfile with buildah (no Docker daemon, no
# image registry needed) and smoke-tests the result. The Debian bookworm base
# image is made locally with debootstrap from the Debian mirror apt already
# uses, so this works where no image registry is reachable. Run as root.
#
#   deploy/image.sh            build (base image made once) + smoke test
#   IMAGE=name:tag deploy/image.sh
set -eu
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/archmerge:latest}
BASE=${BASE:-localhost/archmerge-base:bookworm}
SUITE=bookworm
BUILDAH="buildah --storage-driver vfs"
TMP=$(mktemp -d /tmp/archmerge-image.XXXXXX)
CTR=""

cleanup() {
	[ -n "$CTR" ] && $BUILDAH rm "$CTR" >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

say() { printf '==> %s\n' "$*"; }

missing=""
for p in buildah debootstrap openssl; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing:$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The Debian mirror apt is configured with (deb822 or one-line format).
mirror() {
	for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		sed -n -e 's/^URIs:[[:space:]]*\(http[^[:space:]]*\/debian\/\{0,1\}\)\([[:space:]].*\)\{0,1\}$/\1/p' \
		    -e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\(http[^[:space:]]*\/debian\/\{0,1\}\)[[:space:]].*/\2/p' "$f"
	done | head -n 1
}

if ! $BUILDAH inspect --type image "$BASE" >/dev/null 2>&1; then
	MIRROR=$(mirror)
	MIRROR=${MIRROR:-http://deb.debian.org/debian}
	say "making base image $BASE with debootstrap ($SUITE, $MIRROR)"
	debootstrap --variant=minbase "$SUITE" "$TMP/rootfs" "$MIRROR" >"$TMP/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$TMP/debootstrap.log"; exit 1; }
	# Like Debian's official -slim images: no package caches or lists, no
	# documentation, manual pages or translations (now or from later
	# installs; copyright files stay), and the same apt sources (with
	# updates and security).
	cat >"$TMP/rootfs/etc/dpkg/dpkg.cfg.d/slim" <<EOF
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
	find "$TMP/rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
	rm -rf "$TMP"/rootfs/usr/share/man/* "$TMP"/rootfs/usr/share/info/* "$TMP"/rootfs/usr/share/groff/* \
	    "$TMP"/rootfs/usr/share/lintian/* "$TMP"/rootfs/usr/share/locale/*
	rm -rf "$TMP"/rootfs/var/cache/apt/archives/*.deb "$TMP"/rootfs/var/cache/apt/*.bin \
	    "$TMP"/rootfs/var/lib/apt/lists/* "$TMP"/rootfs/var/log/* "$TMP"/rootfs/etc/apt/sources.list
	cat >"$TMP/rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian*}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	tar -C "$TMP/rootfs" -cf "$TMP/rootfs.tar" .
	rm -rf "$TMP/rootfs"
	CTR=$($BUILDAH from scratch)
	$BUILDAH add "$CTR" "$TMP/rootfs.tar" / >/dev/null
	$BUILDAH config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$CTR"
	$BUILDAH commit --quiet "$CTR" "$BASE" >/dev/null
	$BUILDAH rm "$CTR" >/dev/null
	CTR=""
	rm -f "$TMP/rootfs.tar"
fi

say "building $IMAGE from deploy/Dockerfile (base $BASE)"
# --format docker keeps the HEALTHCHECK (the OCI image format has no field for it).
# No --layers: vfs stores each cached step as a full copy of the tree, and
# committing the build stage's eight steps cost more than the build (120 s
# against 50 s for the whole image without them).
$BUILDAH bud --isolation chroot --format docker --pull=never \
    --build-arg BASE="$BASE" -f deploy/Dockerfile -t "$IMAGE" . >"$TMP/build.log" 2>&1 ||
	{ tail -n 40 "$TMP/build.log"; exit 1; }
# vfs stores every layer as a full copy: drop the build stage and older builds.
$BUILDAH rmi --prune >/dev/null 2>&1 || true
$BUILDAH images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE"

# Smoke test: the final image alone (no -dev packages) runs the binary,
# accepts a configuration, serves HTTPS and answers its own HEALTHCHECK.
say "smoke test in the built image"
PORT=${SMOKE_PORT:-18443}
conf="$TMP/etc"
mkdir -p "$conf/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=archmerge \
    -keyout "$conf/tls/server.key" -out "$conf/tls/server.crt" 2>/dev/null
printf 'Bearer smoke-%s\n' "$(openssl rand -hex 12)" >"$conf/webhook-secret"
printf 'not-a-real-password\n' >"$conf/robot-secret"
cat >"$conf/archmerge.conf" <<EOF
server = {
  listen = "127.0.0.1:$PORT";
  tls = { certificate = "/etc/archmerge/tls/server.crt"; private_key = "/etc/archmerge/tls/server.key"; };
  webhook_secret_file = "/etc/archmerge/webhook-secret";
};
registries = ( { host = "harbor.example.com"; url = "https://127.0.0.1:9";
                 username = "robot\$library+archmerge"; password_file = "/etc/archmerge/robot-secret"; } );
rules = ( { name = "smoke"; repositories = [ "library/*" ]; source = "{repo}:{version}-{arch}";
            target = "{repo}:{version}"; architectures = [ "amd64", "arm64" ]; } );
EOF
chown -R 10001:10001 "$conf"
chmod 600 "$conf/webhook-secret" "$conf/robot-secret" "$conf/tls/server.key"

CTR=$($BUILDAH from --pull-never "$IMAGE")
run() { $BUILDAH run --isolation chroot --network host -v "$conf:/etc/archmerge:ro" "$CTR" -- "$@"; }

run id
run archmerge --version
run archmerge check-config -c /etc/archmerge/archmerge.conf
health=$($BUILDAH inspect --format '{{.Docker.Config.Healthcheck.Test}}' "$IMAGE")
echo "HEALTHCHECK: $health"
# One shell in the container: start the service, wait for the port, then make
# real TLS requests with the image's own curl (the HEALTHCHECK's tool), stop it.
run sh -ec '
	archmerge serve -c /etc/archmerge/archmerge.conf 2>/tmp/serve.log & pid=$!
	i=0
	until curl -s -k -o /dev/null "https://127.0.0.1:'"$PORT"'/"; do
		i=$((i + 1)); [ $i -lt 150 ] || { cat /tmp/serve.log; exit 1; }
		kill -0 $pid 2>/dev/null || { cat /tmp/serve.log; exit 1; }
		sleep 0.2
	done
	code=$(curl -s -k -o /dev/null -w "%{http_code}" -X POST -H "Authorization: Bearer wrong" \
	    -H "Content-Type: application/json" --data "{}" "https://127.0.0.1:'"$PORT"'/hooks/harbor")
	echo "TLS POST /hooks/harbor with a wrong secret: HTTP $code"
	[ "$code" = 401 ]
	proto=$(curl -s -k -o /dev/null -w "%{scheme} %{http_version} ssl_verify_result=%{ssl_verify_result}" \
	    "https://127.0.0.1:'"$PORT"'/healthz")
	echo "TLS handshake: $proto"
	hcode=$(curl -s -k -o /dev/null -w "%{http_code}" "https://127.0.0.1:'"$PORT"'/healthz")
	echo "GET /healthz: HTTP $hcode"
	ok=0
	if ARCHMERGE_HEALTH_URL="https://127.0.0.1:'"$PORT"'/healthz" sh -c "curl --fail --silent --show-error --insecure --max-time 4 \"\$ARCHMERGE_HEALTH_URL\" >/dev/null"; then
		echo "HEALTHCHECK command: healthy"
	else
		ok=1
	fi
	kill -TERM $pid; wait $pid; rc=$?
	echo "serve exit status after SIGTERM: $rc"
	grep -c . /tmp/serve.log >/dev/null && sed -n "1,5p" /tmp/serve.log
	[ $rc -eq 0 ] && [ $ok -eq 0 ]
'

# End to end: `make demo` (registry with TLS and token auth, two pushes, two
# webhooks) with the image's archmerge instead of ./archmerge. It runs as
# root in the container here only because the demo's files belong to root.
say "end to end: make demo with the archmerge of the image"
./tests/deps.sh
cat >"$TMP/archmerge-in-image" <<EOF
#!/bin/sh
exec $BUILDAH run --isolation chroot --network host --user 0:0 -v /tmp:/tmp $CTR -- /usr/bin/archmerge "\$@"
EOF
chmod 755 "$TMP/archmerge-in-image"
ARCHMERGE_BIN="$TMP/archmerge-in-image" /usr/bin/python3 tests/demo.py >"$TMP/demo.log" 2>&1 ||
	{ tail -n 40 "$TMP/demo.log"; exit 1; }
grep -o 'result=published digest=sha256:[0-9a-f]*' "$TMP/demo.log"
grep -E '^ *"(mediaType|architecture)"' "$TMP/demo.log" | sed 's/^ */    /'
say "image $IMAGE OK"
