#!/usr/bin/env bash
# Drop-in for test-resilience-local.sh: the hosts sync parts of its setup() and cleanup().
#
#   source "path/to/k8s-hosts-controller/examples/tyk/test-resilience-local.hosts-sync.sh"
#
#   setup() {
#       # ... existing cluster setup ...
#       hostsSyncSetup
#       hostsSyncResilienceUrls     # GATEWAY_URL, TOXIPROXY_URL by name, in place of kubectl port-forward
#   }
#
#   cleanup() {
#       hostsSyncCleanup
#       # ... existing cleanup ...
#   }
#   trap cleanup EXIT
#
# Compared with a hand-written version (start the controller, `sleep 5`, `|| true` on cleanup): no fixed `sleep 5` (it waits for the first sync and, when
# HOSTS_SYNC_WAIT_FOR is set, for those hostnames), sudo only when needed and with the kubeconfig kept, and
# cleanup reports failures (the controller not stopping, the block left behind) instead of `|| true`.
# cleanup is safe to run twice, and when setup never ran.
#
# hostsSyncResilienceUrls replaces the port-forwards of the resilience tests: `kubectl port-forward` ends when
# the pod behind it is replaced (and every later request fails until it is restarted), a name through the
# LoadBalancer and the Ingress controller does not. It waits (k8s-hosts-controller wait, no sleep) until the
# gateway's and Toxiproxy's names are in the hosts file and Toxiproxy's API answers through its name, then
# exports GATEWAY_URL and TOXIPROXY_URL for the tests. The e2e's resilience test (tests/e2e/test_resilience.py
# in k8s-hosts-controller) runs exactly these functions, in cluster mode, and measures both ways
# (docs/resilience.md).
#
# Settings (environment): HOSTS_SYNC_SH (path of scripts/hosts-sync.sh), HOSTS_SYNC_NAMESPACES
# [tyk,tyk-dp-1,tyk-dp-2], HOSTS_SYNC_WAIT_FOR (hostnames, space-separated), HOSTS_SYNC_GATEWAY_HOST
# [chart-gw.local], HOSTS_SYNC_TOXIPROXY_HOST [toxiproxy.local], and every HOSTS_SYNC_* variable of
# scripts/hosts-sync.sh (--help).

_hosts_sync_script() {
  echo "${HOSTS_SYNC_SH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/hosts-sync.sh}"
}

hostsSyncSetup() {
  echo "Starting k8s-hosts-controller..."
  local wait_for=()
  if [ -n "${HOSTS_SYNC_WAIT_FOR:-}" ]; then
    read -r -a wait_for <<<"$HOSTS_SYNC_WAIT_FOR"
  fi
  HOSTS_SYNC_NAMESPACES="${HOSTS_SYNC_NAMESPACES:-tyk,tyk-dp-1,tyk-dp-2}" \
    "$(_hosts_sync_script)" start ${wait_for[@]+"${wait_for[@]}"}
}

hostsSyncResilienceUrls() {
  local gateway=${HOSTS_SYNC_GATEWAY_HOST:-chart-gw.local} toxiproxy=${HOSTS_SYNC_TOXIPROXY_HOST:-toxiproxy.local}
  echo "Waiting for $gateway and $toxiproxy (Toxiproxy's API by name)..."
  "${HOSTS_SYNC_BIN:-k8s-hosts-controller}" wait \
    --hosts-file "${HOSTS_SYNC_HOSTS_FILE:-/etc/hosts}" --marker "${HOSTS_SYNC_MARKER:-TYK-K8S-HOSTS}" \
    --host "$gateway,$toxiproxy" --ready-url "http://$toxiproxy/version" --timeout "${HOSTS_SYNC_TIMEOUT:-120s}" \
    || { echo "ERROR: $gateway / $toxiproxy not reachable by name (see the line above)" >&2; return 1; }
  export GATEWAY_URL="http://$gateway" TOXIPROXY_URL="http://$toxiproxy"
  echo "GATEWAY_URL=$GATEWAY_URL TOXIPROXY_URL=$TOXIPROXY_URL"
}

hostsSyncCleanup() {
  echo "Stopping k8s-hosts-controller..."
  local rc=0
  # stop: SIGTERM (the controller removes its block), then checks the block is gone; cleanup: removes a
  # block left by a crash even when nothing runs. Both print what went wrong.
  "$(_hosts_sync_script)" stop || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "WARNING: stopping k8s-hosts-controller failed (status $rc); forcing cleanup" >&2
    "$(_hosts_sync_script)" cleanup || { echo "ERROR: hosts cleanup failed; check /etc/hosts" >&2; return 1; }
  fi
}
