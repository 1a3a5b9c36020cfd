#!/usr/bin/env bash
# Builds the release tools from their Go module into a cache outside the checkout: crane (scripts/release.sh
# pushes the image tarball with it) and local-registry (an in-memory OCI registry on the addresses given by
# -listen, for the e2e and for trying a release on this machine). A no-op when they are there.
#
#   scripts/build-release-tools.sh          build (or reuse) and print the bin directory
#   scripts/build-release-tools.sh --print  only print the bin directory
#
# tests/e2e/tools/registry/go.mod pins github.com/google/go-containerregistry (the Go module proxy serves it);
# local-registry is that module's main.go, on the library's pkg/registry.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
LOG_PREFIX=release-tools
module="$root/tests/e2e/tools/registry"
ggcr=$(sed -n 's/^\(require\)\{0,1\}[[:space:]]*github.com\/google\/go-containerregistry \(v[^ ]*\).*/\2/p' "$module/go.mod")
[[ -n "$ggcr" ]] || die "no go-containerregistry version in $module/go.mod"
cache_root="${K8S_HOSTS_CONTROLLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-hosts-controller}"
bin="$cache_root/release-tools-ggcr-$ggcr/bin"

if [[ "${1:-}" == "--print" ]]; then
  echo "$bin"
  exit 0
fi
go_build "$bin" crane "$module" github.com/google/go-containerregistry/cmd/crane
go_build "$bin" local-registry "$module" .
echo "$bin"
