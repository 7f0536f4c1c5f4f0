#!/bin/sh
# Installs the Debian packages that building, testing and the demo need,
# only those that are missing. Run as root (or with sudo available).
set -eu
pkgs="build-essential libcivetweb-dev libcurl4-openssl-dev libjansson-dev libssl-dev
libconfig-dev docker-registry skopeo openssl ca-certificates curl python3 python3-pytest
python3-pytest-xdist
python3-jwt python3-cryptography python3-nacl clang libclang-rt-14-dev valgrind
groff-base systemd python3-yaml docker-compose chromium libnss3-tools docker.io
buildah debootstrap prometheus"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
# docker-registry's maintainer script tries to start a service; nothing to start here.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
