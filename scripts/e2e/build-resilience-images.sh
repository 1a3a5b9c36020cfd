#!/usr/bin/env bash
# Makes the images of the e2e's resilience test (tests/e2e/test_resilience.py) in the local Docker engine:
#   * Toxiproxy v2.5.0: the official image where it can be pulled (a laptop, GitHub), else its server built as a
#     static binary from the Go module (pinned in tests/e2e/tools/toxiproxy) in an otherwise empty image;
#   * the project's Tyk-like stand-in (tests/e2e/tools/tyk-standin: the gateway and its store, one binary),
#     always built here; its tag is a hash of its source, so an edit gives a new image and nothing stale is used.
# A no-op when the images exist. Prints, on the last lines, shell assignments for scripts/e2e/run.sh:
# E2E_TOXIPROXY_IMAGE=... and E2E_TYK_STANDIN_IMAGE=...
#
#   scripts/e2e/build-resilience-images.sh                   auto: the official Toxiproxy when it can be pulled
#   E2E_IMAGES=local scripts/e2e/build-resilience-images.sh  always the local build
set -euo pipefail
# shellcheck source=scripts/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOXIPROXY_VERSION=v2.5.0
LOCAL=k8s-hosts-controller-e2e
total_start=$SECONDS

docker info >/dev/null 2>&1 || die "no Docker engine answers: run scripts/e2e/docker-up.sh first"

if ! choose_image TOXIPROXY "ghcr.io/shopify/toxiproxy:${TOXIPROXY_VERSION#v}" "$LOCAL/toxiproxy:$TOXIPROXY_VERSION"; then
  go_build "$E2E_BIN" "toxiproxy-server-$TOXIPROXY_VERSION" "$E2E_TOOLS/toxiproxy" \
    github.com/Shopify/toxiproxy/v2/cmd/server "-X github.com/Shopify/toxiproxy/v2.Version=$TOXIPROXY_VERSION"
  ln -sf "toxiproxy-server-$TOXIPROXY_VERSION" "$E2E_BIN/toxiproxy-server"
  binary_image "$TOXIPROXY" toxiproxy-server
fi

src="$E2E_TOOLS/tyk-standin"
hash=$(cat "$src/go.mod" "$src/main.go" | sha256sum | cut -c1-12)
STANDIN="$LOCAL/tyk-standin:$hash"
if have_image "$STANDIN"; then
  log "image $STANDIN: present"
else
  go_build "$E2E_BIN" "tyk-standin-$hash" "$src" .
  ln -sf "tyk-standin-$hash" "$E2E_BIN/tyk-standin"
  binary_image "$STANDIN" tyk-standin
fi
log "resilience images ready in $((SECONDS - total_start))s"
echo "E2E_TOXIPROXY_IMAGE=$TOXIPROXY"
echo "E2E_TYK_STANDIN_IMAGE=$STANDIN"
