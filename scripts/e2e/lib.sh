#!/usr/bin/env bash
# Shared by the e2e scripts (sourced): where builds are cached and the pinned versions; scripts/lib.sh for
# progress lines and Go builds.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib.sh
source "$E2E_ROOT/scripts/lib.sh"
E2E_CACHE="${K8S_HOSTS_CONTROLLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-hosts-controller}/e2e"
E2E_TOOLS="$E2E_ROOT/tests/e2e/tools"
E2E_BIN="$E2E_CACHE/bin"
# dockerd started by docker-up.sh writes its pid here; docker-down.sh stops only that one.
E2E_DOCKERD_PID="$E2E_CACHE/dockerd.pid"
E2E_DOCKERD_LOG="$E2E_CACHE/dockerd.log"

LOG_PREFIX=e2e
# auto: official images when they can be pulled, else the local stand-ins; local: always the stand-ins.
E2E_IMAGES_MODE=${E2E_IMAGES:-auto}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# try_pull IMAGE: true when IMAGE is (now) in the engine; a registry that cannot be reached fails fast.
try_pull() {
  have_image "$1" && return 0
  [[ "$E2E_IMAGES_MODE" == local ]] && return 1
  log "pull: trying $1"
  timeout 120 docker pull -q "$1" >/dev/null 2>&1
}

# choose_image VAR OFFICIAL LOCAL: sets VAR to OFFICIAL when it can be had (not in local mode), else to LOCAL;
# true when there is nothing to build (the official image, or LOCAL already in the engine).
choose_image() {
  local var=$1 official=$2 local_image=$3
  if [[ "$E2E_IMAGES_MODE" != local ]] && try_pull "$official"; then
    printf -v "$var" '%s' "$official"
    log "image $official: official"
    return 0
  fi
  printf -v "$var" '%s' "$local_image"
  have_image "$local_image" && { log "image $local_image: present"; return 0; }
  return 1
}

# import_dir DIR IMAGE [docker import --change ...]: the directory as a single-layer image.
import_dir() {
  local dir=$1 image=$2
  shift 2
  tar --numeric-owner --exclude=./.done -C "$dir" -c . | docker import "$@" - "$image" >/dev/null
  log "image $image: imported"
}

# binary_image IMAGE BINARY: the static binary $E2E_BIN/BINARY as the entrypoint of an otherwise empty image,
# with an empty /tmp and the nobody user (a no-op when IMAGE exists).
binary_image() {
  local image=$1 binary=$2 dir
  have_image "$image" && { log "image $image: present"; return; }
  dir=$(mktemp -d)
  mkdir -p "$dir/usr/local/bin" "$dir/tmp" "$dir/etc"
  cp -L "$E2E_BIN/$binary" "$dir/usr/local/bin/$binary"
  echo 'nobody:x:65534:65534:nobody:/:/sbin/nologin' >"$dir/etc/passwd"
  import_dir "$dir" "$image" -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    -c "ENTRYPOINT [\"/usr/local/bin/$binary\"]"
  rm -rf "$dir"
}
