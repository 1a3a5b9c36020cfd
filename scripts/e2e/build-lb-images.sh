#!/usr/bin/env bash
# Makes the images of the e2e's load balancer and Ingress controller in the local Docker engine: MetalLB
# (controller + speaker, L2 mode) and Traefik (kubernetesIngress and kubernetesGateway providers). They stand in for
# what the user's cluster has (cloud-provider-kind, ingress-nginx or a Gateway): a LoadBalancer address, published
# into every Ingress's (and Gateway's) status.
#
# Where the official images can be pulled (a laptop, GitHub), it uses them. Offline it builds each one as a static
# binary from its Go module (pinned in tests/e2e/tools/metallb and tests/e2e/tools/traefik) in an otherwise empty
# image. A no-op when the images exist. Prints, on the last lines, shell assignments for scripts/e2e/run.sh:
# E2E_METALLB_CONTROLLER_IMAGE=..., E2E_METALLB_SPEAKER_IMAGE=..., E2E_TRAEFIK_IMAGE=..., E2E_METALLB_CRDS=...
# (MetalLB's CRDs, from the module's own config/crd) and E2E_GATEWAY_CRDS=... (the Gateway API standard channel,
# from sigs.k8s.io/gateway-api at the version of Traefik's go.mod).
#
#   scripts/e2e/build-lb-images.sh                       auto: official images when they can be pulled
#   E2E_IMAGES=local scripts/e2e/build-lb-images.sh      always the local builds
set -euo pipefail
# shellcheck source=scripts/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

METALLB_VERSION=v0.15.2
TRAEFIK_VERSION=v3.6.12
LOCAL=k8s-hosts-controller-e2e
total_start=$SECONDS

# image VAR OFFICIAL LOCAL BINARY MODULE PACKAGE [LDFLAGS]: sets VAR to the official image when it can be had,
# else to LOCAL, built from the Go module when absent.
image() {
  local binary=$4 module=$5 pkg=$6 ldflags=${7:-}
  choose_image "$1" "$2" "$3" && return
  go_build "$E2E_BIN" "$binary" "$E2E_TOOLS/$module" "$pkg" "$ldflags"
  binary_image "$3" "$binary"
}

docker info >/dev/null 2>&1 || die "no Docker engine answers: run scripts/e2e/docker-up.sh first"
image CONTROLLER quay.io/metallb/controller:$METALLB_VERSION "$LOCAL/metallb-controller:$METALLB_VERSION" \
  metallb-controller metallb go.universe.tf/metallb/controller
image SPEAKER quay.io/metallb/speaker:$METALLB_VERSION "$LOCAL/metallb-speaker:$METALLB_VERSION" \
  metallb-speaker metallb go.universe.tf/metallb/speaker
image TRAEFIK "traefik:$TRAEFIK_VERSION" "$LOCAL/traefik:$TRAEFIK_VERSION" \
  traefik traefik github.com/traefik/traefik/v3/cmd/traefik \
  "-X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION"
# The CRDs come from the module itself (a download, no build), whichever images are used.
crds=$(cd "$E2E_TOOLS/metallb" && go mod download go.universe.tf/metallb && go list -m -f '{{.Dir}}' go.universe.tf/metallb)
[[ -d "$crds/config/crd/bases" ]] || die "no config/crd/bases in the MetalLB module ($crds)"
# The Gateway API standard-channel CRDs at the version Traefik is built with (its go.mod): the CRDs its
# kubernetesGateway provider reads. From the module zip too, cached by Go.
gateway_api=$(cd "$E2E_TOOLS/traefik" && go mod download sigs.k8s.io/gateway-api &&
  go list -m -f '{{.Version}} {{.Dir}}' sigs.k8s.io/gateway-api)
[[ -d "${gateway_api#* }/config/crd/standard" ]] || die "no config/crd/standard in the Gateway API module ($gateway_api)"
log "Gateway API CRDs: sigs.k8s.io/gateway-api ${gateway_api%% *} (standard channel)"
log "load-balancer images ready in $((SECONDS - total_start))s"
echo "E2E_METALLB_CONTROLLER_IMAGE=$CONTROLLER"
echo "E2E_METALLB_SPEAKER_IMAGE=$SPEAKER"
echo "E2E_TRAEFIK_IMAGE=$TRAEFIK"
echo "E2E_METALLB_CRDS=$crds/config/crd/bases"
echo "E2E_GATEWAY_CRDS=${gateway_api#* }/config/crd/standard"
