#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, etcd) and helm from their Go modules
# into a cache outside the checkout. A no-op when the binaries are already there.
#
#   scripts/build-controlplane.sh          build (or reuse) and print the bin directory
#   scripts/build-controlplane.sh --print  only print the bin directory
#
# Versions are pinned by the go.mod files under tests/controlplane/tools/.
set -euo pipefail

KUBE_VERSION=v1.35.4
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.19.5

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/tests/controlplane/tools"
cache_root="${K8S_HOSTS_CONTROLLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-hosts-controller}"
bin="$cache_root/controlplane-k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}-helm-${HELM_VERSION}/bin"

if [[ "${1:-}" == "--print" ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "error: go is not installed; install Go >= 1.25 and re-run $0" >&2; exit 1; }
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

# build NAME MODULE_DIR PACKAGE [LDFLAGS]: go build with a progress line every 30 s.
build() {
  local name=$1 dir=$2 pkg=$3 ldflags=${4:-}
  if [[ -x "$bin/$name" ]]; then
    echo "[controlplane] $name: cached at $bin/$name"
    return
  fi
  echo "[controlplane] $name: building $pkg (a cold build takes minutes on 2 cores)"
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/$name.tmp" "$pkg") &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if (( (SECONDS - start) % 30 < 5 )) && kill -0 "$pid" 2>/dev/null; then
      echo "[controlplane] $name: still building ($((SECONDS - start))s)"
    fi
  done
  wait "$pid" || { echo "error: building $name failed (see the go output above)" >&2; exit 1; }
  mv "$bin/$name.tmp" "$bin/$name"
  echo "[controlplane] $name: built in $((SECONDS - start))s"
}

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
vpkg=k8s.io/component-base/version
build kube-apiserver "$tools/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver \
  "-X $vpkg.gitVersion=$KUBE_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
build etcd "$tools/etcd" go.etcd.io/etcd/server/v3
build helm "$tools/helm" helm.sh/helm/v3/cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"

echo "$bin"
