#!/usr/bin/env bash
# `make e2e`: the end-to-end test on a real kind cluster on this machine.
#   1. a Docker engine (started here, with the runc wrapper, when none answers),
#   2. every image (scripts/build-e2e-images.sh: official ones when they can be pulled, else local stand-ins),
#      scripts/e2e/build-lb-images.sh (MetalLB and Traefik, for tests/e2e/test_lb.py) and
#      scripts/e2e/build-resilience-images.sh (Toxiproxy and the Tyk-like stand-in, for test_resilience.py),
#   3. pytest tests/e2e: kind create cluster with the repository's kind-config.yaml, the chart's DaemonSet,
#      host mode with scripts/hosts-sync.sh, all checked from the host side,
#   4. whatever happens: the cluster deleted, no container left, dockerd stopped if step 1 started it.
# Extra arguments go to pytest (e.g. -k host_mode). E2E_KEEP_CLUSTER=1 keeps the cluster (and the engine) for a
# look; E2E_KEEP_DOCKER=1 keeps a dockerd that step 1 started running for the next run.
set -euo pipefail
# shellcheck source=scripts/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$E2E_ROOT"
PYTHON=${PYTHON:-.venv/bin/python}
start=$SECONDS

cleanup() {
  local rc=$?
  if [[ -z "${E2E_KEEP_CLUSTER:-}" && -n "${E2E_KIND:-}" && -x "${E2E_KIND:-}" ]]; then
    "$E2E_KIND" delete cluster --name "$E2E_CLUSTER" >/dev/null 2>&1 || true
    leftover=$(docker ps -aq --filter "label=io.x-k8s.kind.cluster=$E2E_CLUSTER" 2>/dev/null || true)
    [[ -z "$leftover" ]] || docker rm -f "$leftover" >/dev/null 2>&1 || true
  fi
  if [[ -z "${E2E_KEEP_CLUSTER:-}" ]] && docker info >/dev/null 2>&1; then
    left=$(docker ps -aq --filter "label=io.x-k8s.kind.cluster" | wc -l)
    log "left behind: $left kind node container(s)"
    ((left == 0)) || rc=1
  fi
  [[ -n "${E2E_KEEP_CLUSTER:-}${E2E_KEEP_DOCKER:-}" ]] || bash scripts/e2e/docker-down.sh
  log "e2e finished with exit code $rc in $((SECONDS - start))s"
  exit "$rc"
}
export E2E_CLUSTER=${E2E_CLUSTER:-k8s-hosts-e2e}
trap cleanup EXIT

bash scripts/e2e/docker-up.sh
images_start=$SECONDS
build_out=$(bash scripts/build-e2e-images.sh | tee >(cat >&2))
build_out+=$'\n'$(bash scripts/e2e/build-lb-images.sh | tee >(cat >&2))
build_out+=$'\n'$(bash scripts/e2e/build-resilience-images.sh | tee >(cat >&2))
log "images ready in $((SECONDS - images_start))s"
while IFS='=' read -r key value; do
  [[ "$key" =~ ^E2E_[A-Z_]+$ ]] && export "$key=$value"
done <<<"$build_out"
E2E_HELM="$(bash scripts/build-controlplane.sh --print)/helm"
export E2E_HELM E2E_KUBECTL="$E2E_BIN/kubectl"
[[ -x "$E2E_KUBECTL" ]] || E2E_KUBECTL=$(command -v kubectl) || die "no kubectl: build it with scripts/build-e2e-images.sh"
"$PYTHON" -m pytest tests/e2e -v -s -p no:cacheprovider --durations=0 --durations-min=5 "$@"
