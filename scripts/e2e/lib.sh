#!/usr/bin/env bash
# Shared by the e2e scripts (sourced): where builds are cached, progress lines, and the pinned versions.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_CACHE="${K8S_HOSTS_CONTROLLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-hosts-controller}/e2e"
E2E_TOOLS="$E2E_ROOT/tests/e2e/tools"
E2E_BIN="$E2E_CACHE/bin"
# dockerd started by docker-up.sh writes its pid here; docker-down.sh stops only that one.
E2E_DOCKERD_PID="$E2E_CACHE/dockerd.pid"
E2E_DOCKERD_LOG="$E2E_CACHE/dockerd.log"

KUBE_VERSION=v1.35.4

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# go_build NAME MODULE_DIR PACKAGE [LDFLAGS]: a static binary into $E2E_BIN, a no-op when it is there.
go_build() {
  local name=$1 dir=$2 pkg=$3 ldflags=${4:-}
  if [[ -x "$E2E_BIN/$name" ]]; then
    log "$name: cached"
    return
  fi
  command -v go >/dev/null || die "go is not installed; install Go >= 1.25 and re-run"
  mkdir -p "$E2E_BIN"
  log "$name: building $pkg"
  local start=$SECONDS
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go build -trimpath -ldflags "-s -w $ldflags" -o "$E2E_BIN/$name.tmp" "$pkg") &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if (((SECONDS - start) % 60 < 5)) && kill -0 "$pid" 2>/dev/null; then
      log "$name: still building ($((SECONDS - start))s)"
    fi
  done
  wait "$pid" || die "building $name failed (see the go output above)"
  mv "$E2E_BIN/$name.tmp" "$E2E_BIN/$name"
  log "$name: built in $((SECONDS - start))s"
}
