#!/usr/bin/env bash
# Drop-in for run-tyk-cp-dp.sh (the Tyk deployment script): its "startHostsSync" step.
#
# Paste the function into run-tyk-cp-dp.sh (or `source` this file from it) and call it at the end of the
# deployment, after the Ingresses exist:
#
#   source "path/to/k8s-hosts-controller/examples/tyk/run-tyk-cp-dp.hosts-sync.sh"
#   ...
#   startHostsSync
#
# It uses what run-tyk-cp-dp.sh already defines: log, dp_namespace, CP_NAMESPACE, NUM_DATA_PLANES.
# Compared with starting the controller by hand (sudo, then `sleep 3`): the controller is started by scripts/hosts-sync.sh, which uses sudo only
# when needed and keeps the kubeconfig through it, records the PID and a log file, and waits for the
# controller's first complete sync (no `sleep 3`); a failure stops the deployment with the reason and the
# last log lines instead of passing silently.
#
# Settings (environment):
#   HOSTS_SYNC_SH     path of scripts/hosts-sync.sh [../../scripts/hosts-sync.sh next to this file]
#   HOSTS_SYNC_MODE   host (a process on this machine, the default) or cluster (the Helm chart's DaemonSet)
#   HOSTS_SYNC_WAIT_FOR  hostnames to wait for after the first sync, space-separated (e.g. "chart-dash.local";
#                     for the resilience tests "chart-gw.local toxiproxy.local", see test-resilience-local.hosts-sync.sh)
#   and every HOSTS_SYNC_* variable of scripts/hosts-sync.sh (--help).

startHostsSync() {
  log "Starting k8s-hosts-controller..."

  # Build the namespace list: the control plane, then each data plane.
  local namespaces="$CP_NAMESPACE" i
  for i in $(seq 1 "$NUM_DATA_PLANES"); do
    namespaces="${namespaces},$(dp_namespace "$i")"
  done

  local script="${HOSTS_SYNC_SH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/hosts-sync.sh}"
  local wait_for=()
  if [ -n "${HOSTS_SYNC_WAIT_FOR:-}" ]; then
    read -r -a wait_for <<<"$HOSTS_SYNC_WAIT_FOR"
  fi
  if ! HOSTS_SYNC_NAMESPACES="$namespaces" "$script" start ${wait_for[@]+"${wait_for[@]}"}; then
    log "ERROR: k8s-hosts-controller did not start (see the lines above; '$script logs' prints its log)"
    return 1
  fi
  log "Hosts sync controller started for namespaces: $namespaces"
}

# The matching stop, for the teardown path of the same script.
stopHostsSync() {
  local script="${HOSTS_SYNC_SH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/hosts-sync.sh}"
  "$script" stop
}
