#!/usr/bin/env bash
# Shared by the build scripts (sourced): progress lines and Go builds of pinned tools into a cache directory.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the versions are for the scripts that source this file

# The Kubernetes and etcd the project builds: the test control plane, and the kind node's binaries and images.
KUBE_VERSION=v1.35.4
ETCD_VERSION=v3.6.16

# LOG_PREFIX names the script in progress lines, e.g. "controlplane" or "e2e".
log() { printf '[%s %s] %s\n' "${LOG_PREFIX:-build}" "$(date +%H:%M:%S)" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# kube_version_ldflags VERSION: what Kubernetes' own build stamps into its binaries (`--version`, /version).
kube_version_ldflags() {
  local vpkg=k8s.io/component-base/version minor=${1#v1.}
  minor=${minor%%.*}
  echo "-X $vpkg.gitVersion=$1 -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
}

# go_build OUT_DIR NAME MODULE_DIR PACKAGE [LDFLAGS]: a static binary OUT_DIR/NAME built in the Go module
# MODULE_DIR (which pins the versions), with a progress line every minute; a no-op when it is there.
go_build() {
  local out=$1 name=$2 dir=$3 pkg=$4 ldflags=${5:-}
  if [[ -x "$out/$name" ]]; then
    log "$name: cached at $out/$name"
    return
  fi
  command -v go >/dev/null || die "go is not installed; install Go >= 1.25 and re-run"
  mkdir -p "$out"
  log "$name: building $pkg (a cold build can take minutes on 2 cores)"
  local start=$SECONDS
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go build -trimpath -ldflags "-s -w $ldflags" -o "$out/$name.tmp" "$pkg") &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if (((SECONDS - start) % 60 < 5)) && kill -0 "$pid" 2>/dev/null; then
      log "$name: still building ($((SECONDS - start))s)"
    fi
  done
  wait "$pid" || die "building $name failed (see the go output above)"
  mv "$out/$name.tmp" "$out/$name"
  log "$name: built in $((SECONDS - start))s"
}

# A docker client that builds with BuildKit (the Dockerfile uses RUN --mount): one with the buildx plugin, or
# a client older than 23 (such as Debian's docker.io), whose BuildKit support is built in.
buildkit_docker() {
  local client major
  if docker buildx version >/dev/null 2>&1; then
    echo docker
    return
  fi
  while read -r client; do
    major=$("$client" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
    [[ "$major" =~ ^[0-9]+$ ]] && ((major < 23)) && { echo "$client"; return; }
  done < <(which -a docker)
  die "no docker client can build with BuildKit: install the buildx plugin (or Debian's docker.io)"
}
