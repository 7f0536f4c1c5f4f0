#!/bin/sh
# make verify-compose: deploy/compose.yaml for real (docs/deployment.md).
#   1. make image: deploy/image.sh builds deploy/Dockerfile with buildah on the
#      local debootstrap base image (made once, then reused while it exists in
#      buildah's storage) and smoke-tests it;
#   2. tests/integration/test_compose.py (ARCHMERGE_VERIFY_COMPOSE=1): a private
#      dockerd, the image loaded into it, docker-compose up/down with a registry
#      in Harbor's place, webhooks, health check, journal replayed after down.
# Slow and root. `make test` runs it when dockerd can start here.
set -eu
cd "$(dirname "$0")/.."
t0=$(date +%s)
./tests/deps.sh
./deploy/image.sh
t1=$(date +%s)
ARCHMERGE_VERIFY_COMPOSE=1 /usr/bin/python3 -m pytest -q -s -rs -p no:cacheprovider tests/integration/test_compose.py
t2=$(date +%s)
echo "verify-compose: $((t2 - t0))s (make image $((t1 - t0))s, compose test $((t2 - t1))s)"
