#!/usr/bin/env bash
# Makes sure a Docker engine answers. When none does, installs Debian's docker.io if dockerd is missing and
# starts dockerd in the background with the runc wrapper as its default runtime (privileged containers such as
# kind nodes then start on machines whose capability bounding set lacks CAP_SYS_RESOURCE; elsewhere the
# wrapper changes nothing). scripts/e2e/docker-down.sh stops only a dockerd started here.
set -euo pipefail
# shellcheck source=scripts/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if docker info >/dev/null 2>&1; then
  log "docker: an engine is running ($(docker version --format '{{.Server.Version}}'))"
  exit 0
fi
if ! command -v dockerd >/dev/null; then
  command -v apt-get >/dev/null || die "no Docker engine answers and dockerd is not installed: install Docker"
  log "docker: installing Debian's docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

go_build "$E2E_BIN" runc-wrapper "$E2E_TOOLS/runc-wrapper" .

log "docker: starting dockerd (log: $E2E_DOCKERD_LOG)"
mkdir -p "$E2E_CACHE"
# setsid: dockerd outlives this script, in its own session, and is stopped by docker-down.sh. It must not
# keep the caller's other open descriptors: a lock taken with flock(1) around a test run would stay held for
# as long as the engine runs.
(
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
  exec setsid dockerd \
    --add-runtime "runc-wrapper=$E2E_BIN/runc-wrapper" --default-runtime runc-wrapper \
    >"$E2E_DOCKERD_LOG" 2>&1 </dev/null
) &
echo $! >"$E2E_DOCKERD_PID"
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "docker: engine $(docker version --format '{{.Server.Version}}') is up (pid $(cat "$E2E_DOCKERD_PID"))"
    exit 0
  fi
  kill -0 "$(cat "$E2E_DOCKERD_PID")" 2>/dev/null || { tail -20 "$E2E_DOCKERD_LOG" >&2; die "dockerd exited"; }
  sleep 1
done
tail -20 "$E2E_DOCKERD_LOG" >&2
die "dockerd did not answer within 60s"
