#!/bin/sh
# Creates the files deploy/archmerge.minimal.conf names, with the modes
# archmerge requires: DIR/webhook-secret (0600, "Bearer <random>": paste it
# whole into Harbor's Auth Header), DIR/robot-secret (0600, from ROBOT_SECRET
# or stdin), DIR/tls/server.key (0600) and a self-signed DIR/tls/server.crt
# for HOST (replace it with one from a CA Harbor trusts).
# usage: make-secrets.sh [DIR (default /etc/archmerge)] [HOST (default archmerge)]
set -eu
dir=${1:-/etc/archmerge}
host=${2:-archmerge}
umask 077
mkdir -p "$dir/tls"
if [ ! -e "$dir/webhook-secret" ]; then
    printf 'Bearer %s' "$(openssl rand -hex 32)" > "$dir/webhook-secret"
fi
if [ ! -e "$dir/robot-secret" ]; then
    if [ -n "${ROBOT_SECRET:-}" ]; then
        printf '%s' "$ROBOT_SECRET" > "$dir/robot-secret"
    else
        echo "robot secret (Harbor shows it once), then Enter:" >&2
        IFS= read -r s
        printf '%s' "$s" > "$dir/robot-secret"
    fi
fi
if [ ! -e "$dir/tls/server.key" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$host" \
        -addext "subjectAltName=DNS:$host" \
        -keyout "$dir/tls/server.key" -out "$dir/tls/server.crt" 2>/dev/null
    chmod 0644 "$dir/tls/server.crt"
fi
chmod 0600 "$dir/webhook-secret" "$dir/robot-secret" "$dir/tls/server.key"
echo "created under $dir: webhook-secret, robot-secret, tls/server.key, tls/server.crt" >&2
