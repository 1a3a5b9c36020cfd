#!/usr/bin/env bash
# Builds the test tools from their Go modules into a cache outside the checkout: the control plane
# (kube-apiserver, etcd), helm and actionlint; and fetches the Gateway API CRDs through the Go module proxy.
# A no-op when everything is already there.
#
#   scripts/build-controlplane.sh          build (or reuse) and print the bin directory
#   scripts/build-controlplane.sh --print  only print the bin directory
#   scripts/build-controlplane.sh --crds   only print the Gateway API CRD directory
#
# Kubernetes and etcd versions are in scripts/lib.sh (shared with the e2e images), helm and Gateway API here;
# the go.mod files under tests/controlplane/tools/ pin the modules.
set -euo pipefail

HELM_VERSION=v3.19.5
GATEWAY_API_VERSION=v1.6.3

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
LOG_PREFIX=controlplane
tools="$root/tests/controlplane/tools"
cache_root="${K8S_HOSTS_CONTROLLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-hosts-controller}"
bin="$cache_root/controlplane-k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}-helm-${HELM_VERSION}/bin"

crds="$cache_root/gateway-api-${GATEWAY_API_VERSION}/crds"

if [[ "${1:-}" == "--print" ]]; then
  echo "$bin"
  exit 0
fi
if [[ "${1:-}" == "--crds" ]]; then
  echo "$crds"
  exit 0
fi

mkdir -p "$bin"
build() { go_build "$bin" "$@"; }

build kube-apiserver "$tools/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$(kube_version_ldflags "$KUBE_VERSION")"
build etcd "$tools/etcd" go.etcd.io/etcd/server/v3
build helm "$tools/helm" helm.sh/helm/v3/cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
build actionlint "$tools/actionlint" github.com/rhysd/actionlint/cmd/actionlint

# The Gateway API CRDs (standard channel) from the sigs.k8s.io/gateway-api module's config/crd.
if ! compgen -G "$crds/*.yaml" >/dev/null; then
  log "gateway-api CRDs: fetching sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION"
  module_dir=$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d "$module_dir/config/crd/standard" ]] || die "no config/crd/standard in $module_dir"
  mkdir -p "$crds"
  cp "$module_dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$crds/"
  rm -f "$crds"/*vap*.yaml  # an admission policy, not a CRD
  chmod 0644 "$crds"/*.yaml
else
  log "gateway-api CRDs: cached at $crds"
fi

echo "$bin"
