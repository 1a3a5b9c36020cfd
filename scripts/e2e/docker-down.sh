#!/usr/bin/env bash
# Stops the dockerd that scripts/e2e/docker-up.sh started (and only that one), waiting until it is gone.
set -euo pipefail
# shellcheck source=scripts/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -f "$E2E_DOCKERD_PID" ]] || { log "docker: no dockerd started by docker-up.sh"; exit 0; }
pid=$(cat "$E2E_DOCKERD_PID")
if kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]]; then
  log "docker: stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  kill -0 "$pid" 2>/dev/null && { log "docker: dockerd still running after 60s, killing it"; kill -KILL "$pid"; }
fi
rm -f "$E2E_DOCKERD_PID"
log "docker: stopped"
