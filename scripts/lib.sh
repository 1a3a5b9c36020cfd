#!/usr/bin/env bash
# Shared by the scripts (sourced): progress lines and errors, one duration syntax and one notion of true, and
# Go builds of pinned tools into a cache directory.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the versions are for the scripts that source this file

# The Kubernetes and etcd the project builds: the test control plane, and the kind node's binaries and images.
KUBE_VERSION=v1.35.4
ETCD_VERSION=v3.6.16

# LOG_PREFIX names the script in progress lines, e.g. "controlplane" or "e2e". LOG_FD is where they go: 1 (the
# build scripts, whose callers read their output) unless the script keeps stdout for its answers (2).
log() { printf '[%s %s] %s\n' "${LOG_PREFIX:-build}" "$(date +%H:%M:%S)" "$*" >&"${LOG_FD:-1}"; }
die() { printf '[%s] error: %s\n' "${LOG_PREFIX:-build}" "$*" >&2; exit 1; }
# A mistake in how the script was called: exit 2, with the way to the help text.
usage_error() {
  printf '[%s] error: %s\n' "${LOG_PREFIX:-build}" "$*" >&2
  printf "Run '%s --help' for usage.\n" "$0" >&2
  exit 2
}

# One notion of true for every switch, the controller's own: true, 1, yes, on (any case) are true; false, 0,
# no, off and empty are false; anything else is an error naming the variable. Prints true or false.
bool_setting() {
  case "$(printf '%s' "$2" | tr -d '[:space:]' | tr '[:upper:]' '[:lower:]')" in
    true | 1 | yes | on) echo true ;;
    false | 0 | no | off | "") echo false ;;
    *) usage_error "$1 must be true or false (got '$2')" ;;
  esac
}

# duration_ms NAME VALUE: the one duration syntax of the scripts and the controller (controller/durations.py):
# whole seconds, or h/m/s/ms parts (120, 500ms, 90s, 2m, 1h, 1h30m), more than 0 and at most a day (like
# `k8s-hosts-controller wait`); prints the milliseconds, or is a usage error naming NAME.
duration_ms() {
  local value=$2 total
  if [[ "$value" =~ ^[0-9]+$ ]]; then value="${value}s"; fi
  if [[ -z "$value" || ! "$value" =~ ^(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$ ]]; then
    usage_error "$1 must be a duration such as 120, 500ms, 90s, 2m, 1h or 1h30m (got '$2')"
  fi
  # At most a day, like `k8s-hosts-controller wait`; more than 9 digits would overflow the arithmetic.
  if ((${#BASH_REMATCH[2]} > 9 || ${#BASH_REMATCH[4]} > 9 || ${#BASH_REMATCH[6]} > 9 \
    || ${#BASH_REMATCH[8]} > 9)); then
    usage_error "$1 must be at most a day, 86400s, 1440m or 24h (got '$2')"
  fi
  total=$(( (10#${BASH_REMATCH[2]:-0} * 3600 + 10#${BASH_REMATCH[4]:-0} * 60 + 10#${BASH_REMATCH[6]:-0}) * 1000
    + 10#${BASH_REMATCH[8]:-0} ))
  ((total > 0)) || usage_error "$1 must be more than 0 seconds (got '$2')"
  ((total <= 86400000)) || usage_error "$1 must be at most a day, 86400s, 1440m or 24h (got '$2')"
  echo "$total"
}

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
