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

KUBE_VERSION=v1.35.4
LOG_PREFIX=e2e
