#!/usr/bin/env bash
# Start, stop and check the hosts sync (k8s-hosts-controller), on the host or in the cluster.
# Run with --help for the verbs and the environment variables.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/hosts-sync.sh VERB [ARGS]

Keeps Kubernetes Ingress hostnames in a marked block of the hosts file, by running k8s-hosts-controller
either as a background process on this machine (host mode, the default) or as a DaemonSet installed with the
Helm chart (cluster mode, HOSTS_SYNC_MODE=cluster).

Verbs:
  start              host: start the controller in the background (PID + log file), wait for its first sync
                     cluster: helm upgrade --install ./chart and wait for the DaemonSet and its first sync
  stop               host: SIGTERM the controller (it removes its block), check the block is gone; only the
                     process start ran is signalled (same command and start time as recorded in the PID
                     file): another program (PID reused, a `tail -f` of the log) is reported, never signalled
                     cluster: helm uninstall, wait until the block is gone
  cleanup            stop if running, then remove the block (k8s-hosts-controller --cleanup) whatever happened
  wait [--absent] [--timeout DURATION] [HOST...]
                     wait until the HOSTs are in the block (or gone with --absent), through
                     `k8s-hosts-controller wait`; without HOSTs, wait for the first complete sync
  status             print the state; exit 0 running and synced, 1 dead (stale PID file),
                     2 running but not synced yet, 3 not running / not installed
  metrics            print the controller's Prometheus metrics
  logs               print the log (host: the log file; cluster: kubectl logs)
  render             print what start would run, installing nothing: host: the controller command line;
                     cluster: the manifests (helm template with the values start passes)
  -h, --help         this text

The block is read by the controller itself (`k8s-hosts-controller status --json`, parsed with python3): the
installed command, else this checkout's (python3 -m controller, standard library only), so a comment naming
the marker is no block here either. Helm values are encoded by python3's json module.

Environment (defaults in brackets):
  HOSTS_SYNC_MODE            host | cluster [host]
  HOSTS_SYNC_NAMESPACES      comma-separated namespaces to watch (required unless HOSTS_SYNC_ALL_NAMESPACES=true)
  HOSTS_SYNC_ALL_NAMESPACES  true: watch all namespaces [false] (true/1/yes/on or false/0/no/off, any case)
  HOSTS_SYNC_HOSTS_FILE      hosts file on this machine [/etc/hosts]
  HOSTS_SYNC_MARKER          block name: #### BEGIN <marker> #### [TYK-K8S-HOSTS]
  HOSTS_SYNC_TIMEOUT         how long start/stop/wait may take: whole seconds, or h/m/s/ms parts, e.g. 120,
                             500ms, 90s, 2m, 1h, 1h30m, at most a day [120s]; wait --timeout takes the same
  HOSTS_SYNC_KUBECONFIG      kubeconfig [$KUBECONFIG, else ~/.kube/config]; passed explicitly, so sudo keeps it
  HOSTS_SYNC_CONTEXT         kubeconfig context [current]
 host mode:
  HOSTS_SYNC_BIN             controller command (name on PATH or a path) [k8s-hosts-controller]
  HOSTS_SYNC_METRICS_ADDR    --metrics-bind-address; 0 disables /metrics and /readyz [127.0.0.1:8080]
  HOSTS_SYNC_WRITE_MODE      --write-mode auto|rename|inplace [controller default: auto: in place by itself when a
                             kind node bind-mounts the same file; never rename then: docs/troubleshooting.md]
  HOSTS_SYNC_EXTRA_ARGS      more controller flags, split on spaces (e.g. "--domain-filter local --verbose")
  HOSTS_SYNC_PID_FILE        [${XDG_RUNTIME_DIR:-/tmp}/k8s-hosts-controller.pid]
  HOSTS_SYNC_LOG_FILE        [${XDG_RUNTIME_DIR:-/tmp}/k8s-hosts-controller.log]
  HOSTS_SYNC_SUDO            auto | always | never [auto: sudo only when not root and the hosts file or its
                             directory is not writable]
 cluster mode:
  HOSTS_SYNC_RELEASE         Helm release [k8s-hosts-controller]
  HOSTS_SYNC_RELEASE_NAMESPACE  namespace of the release, created if missing [k8s-hosts-controller]
  HOSTS_SYNC_CHART           chart path or reference [<repo>/chart]
  HOSTS_SYNC_IMAGE           image repository[:tag], e.g. k8s-hosts-controller:dev [k8s-hosts-controller (the
                             local image, tag: the chart's appVersion) with the checkout's chart, else the
                             chart's default (the released image)]
  HOSTS_SYNC_NODE_HOSTS_PATH hostsFile.nodePath: where the kind node sees the host's hosts file [chart default]
  HOSTS_SYNC_HELM_ARGS       more helm arguments, split on spaces (e.g. "--set verbose=true")
  HOSTS_SYNC_METRICS_PORT    the pods' metrics port that `metrics` reads (the chart's metrics.port) [8080]
  HOSTS_SYNC_CLUSTER_NAME    cluster.name, recorded in the block [the kubeconfig context's name]
  HOSTS_SYNC_CLUSTER_SERVER  cluster.server: the API server URL as this machine reaches it, recorded in the
                             block so that `k8s-hosts-controller status` can tell when the cluster is gone
                             (e.g. after a bare `kind delete cluster`) [the kubeconfig context's server]

Examples:
  HOSTS_SYNC_NAMESPACES=tyk,tyk-dp-1 scripts/hosts-sync.sh start
  scripts/hosts-sync.sh wait chart-dash.local chart-gw.local
  scripts/hosts-sync.sh stop
  HOSTS_SYNC_MODE=cluster HOSTS_SYNC_IMAGE=k8s-hosts-controller:dev HOSTS_SYNC_NAMESPACES=tyk \
    scripts/hosts-sync.sh start
EOF
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
LOG_PREFIX=hosts-sync
LOG_FD=2 # stdout is for status, metrics, logs and render

mode=${HOSTS_SYNC_MODE:-host}
namespaces=${HOSTS_SYNC_NAMESPACES:-}
hosts_file=${HOSTS_SYNC_HOSTS_FILE:-/etc/hosts}
marker=${HOSTS_SYNC_MARKER:-TYK-K8S-HOSTS}
kubeconfig=${HOSTS_SYNC_KUBECONFIG:-${KUBECONFIG:-$HOME/.kube/config}}
context=${HOSTS_SYNC_CONTEXT:-}
bin=${HOSTS_SYNC_BIN:-k8s-hosts-controller}
metrics_addr=${HOSTS_SYNC_METRICS_ADDR:-127.0.0.1:8080}
write_mode=${HOSTS_SYNC_WRITE_MODE:-}
run_dir=${XDG_RUNTIME_DIR:-/tmp}
pid_file=${HOSTS_SYNC_PID_FILE:-$run_dir/k8s-hosts-controller.pid}
log_file=${HOSTS_SYNC_LOG_FILE:-$run_dir/k8s-hosts-controller.log}
sudo_policy=${HOSTS_SYNC_SUDO:-auto}
release=${HOSTS_SYNC_RELEASE:-k8s-hosts-controller}
release_ns=${HOSTS_SYNC_RELEASE_NAMESPACE:-k8s-hosts-controller}
chart=${HOSTS_SYNC_CHART:-$root/chart}
image=${HOSTS_SYNC_IMAGE:-}
# The checkout's chart defaults to the released image; from the checkout the image is built and loaded locally.
[[ -n "$image" || "$chart" != "$root/chart" ]] || image=k8s-hosts-controller
node_hosts_path=${HOSTS_SYNC_NODE_HOSTS_PATH:-}

# Bash 3.2 (macOS) compatible: no mapfile, and "${a[@]+"${a[@]}"}" for arrays that may be empty under set -u.
file_flags=(--hosts-file "$hosts_file" --marker "$marker")

need() {
  command -v "$1" >/dev/null || die "$1 is not installed ($2)"
}

# Parsed once (duration_ms, scripts/lib.sh) into $timeout_s, whole seconds rounded up, for this script's own
# loops, and $timeout ("<seconds>s", or "<ms>ms" below a whole second) for the tools, which all read that form:
# `k8s-hosts-controller wait --timeout`, helm and kubectl --timeout.
set_timeout() {
  local ms
  ms=$(duration_ms "$1" "$2")
  timeout_s=$(((ms + 999) / 1000))
  if ((ms % 1000)); then timeout="${ms}ms"; else timeout="$((ms / 1000))s"; fi
}

# ---- the block, as the controller reads it -----------------------------------------------------------------

# `k8s-hosts-controller status`: the installed command, else this checkout's package (standard library only,
# so cluster mode needs no pip install). One parser for the block, the writer's: no grep or awk here.
status_cmd=()
find_status_cmd() {
  local path
  if path=$(command -v -- "$bin" 2>/dev/null); then
    status_cmd=("$path" status)
  elif [[ -f "$root/controller/__main__.py" ]] && command -v python3 >/dev/null; then
    status_cmd=(env "PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH}" python3 -m controller status)
  else
    die "cannot read the block: '$bin' is not installed (see docs/install.md) and python3 is not there to run this checkout's controller"
  fi
}

# Sets $block (present or none), $entries (lines in the block) and $state (live, stale, unknown, unchecked;
# none without a block) from `status --json`; arguments go to status (--no-check: no question to the cluster).
read_block() {
  block=none entries=0 state=none
  [[ -r "$hosts_file" ]] || return 0
  ((${#status_cmd[@]})) || find_status_cmd
  need python3 "it reads the JSON of '${status_cmd[*]}'"
  local json parsed rc=0
  json=$("${status_cmd[@]}" --json "$@" "${file_flags[@]}") || rc=$?
  # 3 and 4 are answers (stale, cannot be checked); anything else is a failure, explained above by status.
  case $rc in 0 | 3 | 4) ;; *) die "'${status_cmd[*]} --json $* ${file_flags[*]}' failed (status $rc)" ;; esac
  parsed=$(python3 -c 'import json, sys
out = json.load(sys.stdin)
print("present" if out["block"] else "none", out.get("entries", 0), out.get("state", "none"))' <<<"$json" 2>/dev/null) \
    || die "'${status_cmd[*]} --json' gave no JSON: $json"
  read -r block entries state <<<"$parsed"
}

has_block() {
  read_block --no-check
  [[ $block == present ]]
}

# "; STALE ..." after a read_block that checked the cluster, when `status` said the block's cluster is gone
# (deleted without its cleanup).
stale_note() {
  if [[ $state == stale ]]; then
    printf "; STALE block: the cluster that wrote it is gone (sudo %s --cleanup removes it)" "$bin"
  fi
}

# ---- host mode ---------------------------------------------------------------------------------------------

# sudo only when needed: not root, and we cannot write the file (or its directory, for the rename write).
sudo_cmd=()
setup_sudo() {
  local need=false
  case "$sudo_policy" in
    always) need=true ;;
    never) need=false ;;
    auto)
      if [[ $(id -u) -ne 0 ]]; then
        if [[ ! -w "$hosts_file" || ! -w "$(dirname "$hosts_file")" ]]; then need=true; fi
      fi
      ;;
    *) usage_error "HOSTS_SYNC_SUDO must be auto, always or never (got '$sudo_policy')" ;;
  esac
  if [[ $need == true ]]; then
    command -v sudo >/dev/null || die "not root and $hosts_file is not writable, but sudo is not installed (run as root, or set HOSTS_SYNC_HOSTS_FILE to a writable file)"
    # env(1) passes the variables through sudo's env_reset without needing sudo -E.
    sudo_cmd=(sudo -n)
    if [[ -t 0 ]]; then sudo_cmd=(sudo); fi
  fi
}

# Absolute path of the controller: sudo resets PATH (secure_path), so a bare name may not be found as root.
resolve_bin() {
  local path
  path=$(command -v -- "$bin" 2>/dev/null) || die "controller command '$bin' not found (install it from this checkout: python3 -m venv ~/.local/k8s-hosts-controller && ~/.local/k8s-hosts-controller/bin/pip install $root; then set HOSTS_SYNC_BIN=~/.local/k8s-hosts-controller/bin/k8s-hosts-controller)"
  [[ -x "$path" ]] || die "controller command '$path' is not executable"
  bin=$path
}

kube_flags=()
set_kube_flags() {
  kube_flags=()
  if [[ "$kubeconfig" == *:* ]]; then
    # A KUBECONFIG list: the controller merges it like kubectl; it is passed through the environment.
    :
  elif [[ -n "$kubeconfig" ]]; then
    [[ -r "$kubeconfig" ]] || die "kubeconfig $kubeconfig not found or not readable (set KUBECONFIG or HOSTS_SYNC_KUBECONFIG; for kind: kind export kubeconfig --name <cluster>)"
    kube_flags=(--kubeconfig "$kubeconfig")
  fi
  if [[ -n "$context" ]]; then kube_flags+=(--context "$context"); fi
}

need_namespaces() {
  if [[ $all_namespaces == false && -z "$namespaces" ]]; then
    usage_error "set HOSTS_SYNC_NAMESPACES (comma-separated) or HOSTS_SYNC_ALL_NAMESPACES=true"
  fi
}

# The controller's command as start runs it: $run_env (for env(1)) and $run_args.
host_command() {
  need_namespaces
  set_kube_flags
  local extra=()
  run_args=("${file_flags[@]}")
  if ((${#kube_flags[@]})); then run_args+=("${kube_flags[@]}"); fi
  if [[ $all_namespaces == true ]]; then run_args+=(--all-namespaces); else run_args+=(--namespaces "$namespaces"); fi
  run_args+=(--metrics-bind-address "$metrics_addr")
  if [[ -n "$write_mode" ]]; then run_args+=(--write-mode "$write_mode"); fi
  if [[ -n "${HOSTS_SYNC_EXTRA_ARGS:-}" ]]; then
    read -r -a extra <<<"$HOSTS_SYNC_EXTRA_ARGS"
    if ((${#extra[@]})); then run_args+=("${extra[@]}"); fi
  fi
  run_env=("HOSTS_SYNC=1") # never an empty array (bash 3.2)
  if [[ "$kubeconfig" == *:* ]]; then run_env=("KUBECONFIG=$kubeconfig"); fi
}

ready_url() {
  [[ "$metrics_addr" == 0 ]] && return 0
  local host=${metrics_addr%:*} port=${metrics_addr##*:}
  case "$host" in "" | 0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;; esac
  echo "http://$host:$port/readyz"
}

# True when a process with that PID exists and is not a zombie (works for root-owned processes too,
# unlike kill -0).
alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z* ]]
}

# The command line of PID (its arguments joined by spaces, never cut), empty when it is gone.
command_of() {
  ps -ww -o args= -p "$1" 2>/dev/null || true
}

# When PID started, in one fixed form (the same whatever the locale or time zone), empty when it is gone.
# A PID can be reused, its start time cannot: together they name one process.
start_time_of() {
  LC_ALL=C TZ=UTC0 ps -o lstart= -p "$1" 2>/dev/null | sed 's/^ *//; s/ *$//' || true
}

# How the controller was started: the command's start, exactly as `start` runs it (sudo and env before it,
# and python before it for an installed script, are allowed; more flags after it).
command_signature() {
  printf '%s --hosts-file %s --marker %s' "$1" "$hosts_file" "$marker"
}

# The PID file: the PID on the first line, then key=value lines (started=, command=) that let us recognise
# the process later; a PID file of an older version has only the PID.
write_pid_file() {
  printf '%s\nstarted=%s\ncommand=%s\n' "$1" "$(start_time_of "$1")" "$(command_signature "$bin")" >"$pid_file"
}

pid_file_field() {
  sed -n "s/^$1=//p" "$pid_file" 2>/dev/null | sed -n 1p
}
# Why PID is not the controller this script started, empty when it is. PIDs are reused, and the PID file may
# be old or written by someone else: never signal (through sudo!) whatever process now holds that number. The
# process must run the exact command start ran (not a command line that merely mentions the program, like a
# `tail -f` of its log) and, when the PID file records it, have started at the recorded time.
not_controller_reason() {
  local pid=$1 started signature args
  started=$(pid_file_field started)
  signature=$(pid_file_field command)
  if [[ -z "$signature" ]]; then
    # An older PID file: only the command can tell, as start would run it now.
    signature=$(command_signature "$(command -v -- "$bin" 2>/dev/null || echo "$bin")")
  fi
  args=$(command_of "$pid")
  if [[ " $args " != *" $signature "* ]]; then
    echo "it runs: $(printf '%s' "$args" | cut -c1-120)"
  elif [[ -n "$started" && "$(start_time_of "$pid")" != "$started" ]]; then
    echo "it started at $(start_time_of "$pid"), not at $started as recorded: the PID was reused"
  fi
}

is_controller() {
  [[ -z "$(not_controller_reason "$1")" ]]
}

# PID from the PID file when it is our running controller; says why not otherwise.
running_controller() {
  local pid why
  pid=$(read_pid) || return 1
  alive "$pid" || return 1
  why=$(not_controller_reason "$pid")
  if [[ -n "$why" ]]; then
    log "PID $pid from $pid_file is not the controller ($why); not signalling it, treating the PID file as stale"
    return 1
  fi
  echo "$pid"
}

read_pid() {
  [[ -f "$pid_file" ]] || return 1
  local pid
  pid=$(head -n 1 "$pid_file" | tr -cd '0-9')
  [[ -n "$pid" ]] || return 1
  echo "$pid"
}

show_log_tail() {
  if [[ -s "$log_file" ]]; then
    echo "---- last lines of $log_file ----" >&2
    tail -n 30 "$log_file" >&2
    echo "----" >&2
  fi
}

# Arguments of `k8s-hosts-controller wait` (read-only: no sudo needed to read the hosts file).
wait_args_for() {
  wait_cmd=("$bin" wait "${file_flags[@]}" --timeout "$timeout")
  local h
  for h in "$@"; do
    case "$h" in
      --absent) wait_cmd+=(--absent) ;;
      --ready-url=*) wait_cmd+=(--ready-url "${h#--ready-url=}") ;;
      *) wait_cmd+=(--host "$h") ;;
    esac
  done
}

# Send a signal to PID, through sudo when the process is not ours.
signal_pid() {
  local sig=$1 pid=$2
  kill "-$sig" "$pid" 2>/dev/null && return 0
  alive "$pid" || return 0
  if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then
    sudo -n kill "-$sig" "$pid" && return 0
  fi
  return 1
}


host_start() {
  need_namespaces
  resolve_bin
  local pid
  if pid=$(running_controller); then
    log "already running (PID $pid, log $log_file)"
    return 0
  fi
  [[ -f "$hosts_file" ]] || die "hosts file $hosts_file does not exist"
  setup_sudo
  mkdir -p "$(dirname "$pid_file")" "$(dirname "$log_file")"
  host_command

  log "starting $bin ${run_args[*]}${sudo_cmd[*]+ (through sudo)}"
  echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) hosts-sync start: $bin ${run_args[*]}" >>"$log_file"
  # Through sudo, the recorded PID is sudo's: sudo relays SIGTERM/SIGINT to the controller.
  ${sudo_cmd[@]+"${sudo_cmd[@]}"} env "${run_env[@]}" "$bin" "${run_args[@]}" </dev/null >>"$log_file" 2>&1 &
  pid=$!
  write_pid_file "$pid"
  log "PID $pid (recorded in $pid_file), log $log_file"

  # Wait for the first complete sync (the controller's /readyz), or for the process to die, whichever
  # comes first. No fixed sleep: `k8s-hosts-controller wait` returns as soon as the condition holds.
  local url wait_args=()
  url=$(ready_url)
  if [[ -n "$url" ]]; then wait_args+=("--ready-url=$url"); fi
  wait_args+=("$@")
  if ((${#wait_args[@]} == 0)); then
    log "metrics are disabled and no host was given: not waiting for the first sync"
    alive "$pid" || { show_log_tail; die "the controller exited at once"; }
    return 0
  fi
  wait_args_for "${wait_args[@]}"
  # Started directly (not in a subshell), so that $! is the waiter itself and killing it leaves nothing behind.
  "${wait_cmd[@]}" &
  local waiter=$! rc=0
  # Until the waiter or the controller ends, whichever comes first.
  while alive "$waiter"; do
    if ! alive "$pid"; then
      kill "$waiter" 2>/dev/null || true
      wait "$waiter" 2>/dev/null || true
      wait "$pid" 2>/dev/null || rc=$?
      rm -f "$pid_file"
      show_log_tail
      die "the controller exited (status $rc) before its first sync; see $log_file"
    fi
    sleep 0.2
  done
  wait "$waiter" || rc=$?
  if ((rc != 0)); then
    show_log_tail
    if ! alive "$pid"; then rm -f "$pid_file"; die "the controller exited before its first sync; see $log_file"; fi
    die "the controller (PID $pid) did not complete its first sync within $timeout (still running; stop it with '$0 stop'); see $log_file"
  fi
  read_block --no-check
  log "first sync complete ($entries entries in $hosts_file)"
}

# SIGTERM the controller and wait until it is gone. Returns 1 if it had to be killed.
host_terminate() {
  local pid=$1 limit waited=0
  limit=$((timeout_s * 10))
  log "stopping PID $pid"
  signal_pid TERM "$pid" || die "could not send SIGTERM to PID $pid (not allowed: run as root or with sudo)"
  while alive "$pid"; do
    if ((waited >= limit)); then
      log "PID $pid did not exit within $timeout after SIGTERM; sending SIGKILL"
      signal_pid KILL "$pid" || log "could not SIGKILL PID $pid"
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  return 0
}

host_cleanup_block() {
  resolve_bin
  setup_sudo
  local args=("${file_flags[@]}") rc=0
  if [[ -n "$write_mode" ]]; then args+=(--write-mode "$write_mode"); fi
  log "removing the block from $hosts_file ($bin --cleanup)"
  ${sudo_cmd[@]+"${sudo_cmd[@]}"} "$bin" --cleanup "${args[@]}" || rc=$?
  ((rc == 0)) || die "'$bin --cleanup ${args[*]}' failed (status $rc)"
}

host_stop() {
  local pid failed=0
  if pid=$(read_pid); then
    if pid=$(running_controller); then
      host_terminate "$pid" || failed=1
    elif ! alive "$pid"; then
      log "PID $pid from $pid_file is not running (stale PID file)"
    fi
    rm -f "$pid_file"
  else
    log "not running (no PID file $pid_file)"
  fi
  if has_block; then
    if ((failed == 0)) && [[ -n "${pid:-}" ]]; then
      log "warning: the block is still in $hosts_file after the controller stopped; removing it"
      show_log_tail
    fi
    host_cleanup_block
  fi
  ((failed == 0)) || { show_log_tail; die "the controller had to be killed; the block was removed with --cleanup"; }
  log "stopped; no '$marker' block in $hosts_file"
}

host_status() {
  local pid url code
  if ! pid=$(read_pid); then
    read_block
    echo "not running (no PID file $pid_file); $entries entries in the block of $hosts_file$(stale_note)"
    return 3
  fi
  if ! alive "$pid"; then
    echo "dead: PID $pid from $pid_file is not running (see $log_file; '$0 cleanup' removes a leftover block)"
    return 1
  fi
  if ! is_controller "$pid"; then
    echo "dead: PID $pid from $pid_file is another program now, not the controller (see $log_file; '$0 cleanup' removes a leftover block)"
    return 1
  fi
  url=$(ready_url)
  if [[ -n "$url" ]] && command -v curl >/dev/null; then
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$url" || true)
    if [[ "$code" != 200 ]]; then
      echo "running (PID $pid), not synced yet ($url answered ${code:-nothing})"
      return 2
    fi
  fi
  read_block --no-check
  echo "running (PID $pid), synced; $entries entries in the block of $hosts_file; log $log_file"
  return 0
}

host_logs() {
  [[ -f "$log_file" ]] || die "no log file $log_file"
  cat -- "$log_file"
}

host_metrics() {
  [[ "$metrics_addr" != 0 ]] || die "metrics are disabled (HOSTS_SYNC_METRICS_ADDR=0)"
  local url
  url=$(ready_url)
  url=${url%/readyz}/metrics
  command -v curl >/dev/null || die "curl is not installed"
  curl -fsS --max-time 10 "$url" || die "could not fetch $url"
}

# ---- cluster mode ------------------------------------------------------------------------------------------

kubectl_cmd() {
  local args=()
  if [[ -n "$kubeconfig" ]]; then args+=(--kubeconfig "$kubeconfig"); fi
  if [[ -n "$context" ]]; then args+=(--context "$context"); fi
  kubectl ${args[@]+"${args[@]}"} "$@"
}

helm_cmd() {
  local args=()
  if [[ -n "$kubeconfig" && "$kubeconfig" != *:* ]]; then args+=(--kubeconfig "$kubeconfig"); fi
  if [[ -n "$context" ]]; then args+=(--kube-context "$context"); fi
  helm ${args[@]+"${args[@]}"} "$@"
}

# Wait until the block is gone from the hosts file (after helm uninstall; the pod's preStop/SIGTERM cleanup).
# A deadline, not a count of polls: each look at the block runs `status`, which takes longer than the pause.
wait_block_gone() {
  local deadline=$((SECONDS + timeout_s))
  while has_block; do
    ((SECONDS <= deadline)) || return 1 # SECONDS counts whole seconds: never less than the timeout
    sleep 0.1
  done
}

cluster_pods() {
  kubectl_cmd -n "$release_ns" get pods -l "app.kubernetes.io/instance=$release" \
    -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'
}

# The chart's values for start and render, in a JSON file ($values, removed on exit) encoded by python3's json
# module: a marker, path or name with quotes, spaces, commas, '=' or backslashes reaches the chart as it was
# given (its schema then judges it), never as broken JSON or a value helm splits.
write_values() {
  need_namespaces
  need python3 "it encodes the Helm values"
  # Which cluster writes the block, as this machine knows it: the pod cannot see the host's kubeconfig.
  local cluster_name=${HOSTS_SYNC_CLUSTER_NAME:-} cluster_server=${HOSTS_SYNC_CLUSTER_SERVER:-}
  if [[ -z "$cluster_name" ]]; then
    cluster_name=${context:-$(kubectl_cmd config current-context 2>/dev/null || true)}
  fi
  if [[ -z "$cluster_server" ]]; then
    cluster_server=$(kubectl_cmd config view --minify -o 'jsonpath={.clusters[0].cluster.server}' 2>/dev/null || true)
  fi
  values=$(mktemp "${TMPDIR:-/tmp}/hosts-sync-values.XXXXXX")
  # shellcheck disable=SC2064 # expand now: the path is known now
  trap "rm -f '$values'" EXIT
  python3 - "$all_namespaces" "$namespaces" "$marker" "$cluster_name" "$cluster_server" "$node_hosts_path" \
    "$image" >"$values" <<'PY' || die "could not write the Helm values"
import json
import sys

all_ns, namespaces, marker, name, server, node_path, image = sys.argv[1:]
values = {"allNamespaces": all_ns == "true", "marker": marker, "cluster": {"name": name, "server": server}}
if all_ns != "true":
    values["namespaces"] = [ns for ns in ("".join(part.split()) for part in namespaces.split(",")) if ns]
if node_path:
    values["hostsFile"] = {"nodePath": node_path}
if image:
    # repository[:tag]; a ':' before the last '/' is a registry's port
    repo, tag = image.rsplit(":", 1) if ":" in image.rsplit("/", 1)[-1] else (image, "")
    values["image"] = {"repository": repo, **({"tag": tag} if tag else {})}
print(json.dumps(values))
PY
  helm_extra=()
  if [[ -n "${HOSTS_SYNC_HELM_ARGS:-}" ]]; then read -r -a helm_extra <<<"$HOSTS_SYNC_HELM_ARGS"; fi
}

cluster_start() {
  need helm "https://helm.sh/docs/intro/install/"
  need kubectl "https://kubernetes.io/docs/tasks/tools/"
  write_values
  log "helm upgrade --install $release $chart -n $release_ns (values: $(cat "$values"))"
  helm_cmd upgrade --install "$release" "$chart" --namespace "$release_ns" --create-namespace \
    -f "$values" --wait --timeout "$timeout" ${helm_extra[@]+"${helm_extra[@]}"} \
    || { cluster_logs >&2 || true; die "helm upgrade --install $release failed"; }
  # The pods are Ready once /readyz says the first sync is complete.
  kubectl_cmd -n "$release_ns" wait pod -l "app.kubernetes.io/instance=$release" --for=condition=Ready \
    --timeout "$timeout" || { cluster_logs >&2 || true; die "the controller pods are not Ready"; }
  if (($#)); then
    wait_hosts "$@" || die "hosts not in $hosts_file within $timeout: $*"
  fi
  read_block --no-check
  log "installed; $entries entries in $hosts_file"
}

cluster_installed() { helm_cmd status "$release" --namespace "$release_ns" >/dev/null 2>&1; }

cluster_stop() {
  need helm "https://helm.sh/docs/intro/install/"
  if cluster_installed; then
    log "helm uninstall $release -n $release_ns"
    helm_cmd uninstall "$release" --namespace "$release_ns" --wait --timeout "$timeout" \
      || die "helm uninstall $release failed"
  else
    log "release $release is not installed in $release_ns"
  fi
  if ! wait_block_gone; then
    die "the '$marker' block is still in $hosts_file $timeout after uninstall (run '$0 cleanup' to remove it)"
  fi
  log "uninstalled; no '$marker' block in $hosts_file"
}

cluster_status() {
  if ! cluster_installed; then
    read_block
    echo "not installed (no release $release in $release_ns)$(stale_note)"
    return 3
  fi
  local ds
  ds=$(kubectl_cmd -n "$release_ns" get ds -l "app.kubernetes.io/instance=$release" \
    -o jsonpath='{range .items[*]}{.metadata.name} {.status.numberReady}/{.status.desiredNumberScheduled}{"\n"}{end}')
  if [[ -z "$ds" ]]; then
    echo "release $release installed, but no DaemonSet found"
    return 1
  fi
  local name ready
  read -r name ready <<<"$ds"
  if [[ "${ready%/*}" != "${ready#*/}" || "${ready%/*}" == 0 ]]; then
    echo "installed (DaemonSet $name: $ready ready), not synced yet"
    return 2
  fi
  read_block --no-check
  echo "installed (DaemonSet $name: $ready ready), synced; $entries entries in the block of $hosts_file"
}

cluster_metrics() {
  local pod port
  pod=$(cluster_pods | sed -n 1p)
  [[ -n "$pod" ]] || die "no controller pod for release $release in $release_ns"
  port=${HOSTS_SYNC_METRICS_PORT:-8080}
  # Through the API server's pod proxy: no port-forward to set up or tear down.
  kubectl_cmd get --raw "/api/v1/namespaces/$release_ns/pods/$pod:$port/proxy/metrics" \
    || die "could not fetch metrics from pod $pod port $port"
}

cluster_logs() {
  kubectl_cmd -n "$release_ns" logs -l "app.kubernetes.io/instance=$release" --all-containers --tail=-1 --prefix
}

# ---- the verbs: each one once, its mode handled inside -----------------------------------------------------

# `k8s-hosts-controller wait` reads the block on this machine, whichever mode wrote it.
wait_hosts() {
  resolve_bin
  wait_args_for "$@"
  "${wait_cmd[@]}"
}

# A verb whose work is all in its mode's function: host_VERB or cluster_VERB.
cmd_start() {
  local a
  for a in "$@"; do [[ "$a" != -* ]] || usage_error "start takes hostnames to wait for, not '$a'"; done
  "${mode}_start" "$@"
}

cmd_stop() {
  (($# == 0)) || usage_error "stop takes no arguments"
  "${mode}_stop"
}

cmd_cleanup() {
  (($# == 0)) || usage_error "cleanup takes no arguments"
  local pid
  case $mode in
    host)
      if pid=$(running_controller); then host_terminate "$pid" || true; fi
      rm -f "$pid_file"
      ;;
    cluster)
      if cluster_installed; then cluster_stop || true; fi
      # In place: a rename would leave the kind node's bind mount on the old inode.
      write_mode=inplace
      if has_block && ! command -v -- "$bin" >/dev/null 2>&1; then
        die "the '$marker' block is still in $hosts_file and $bin is not installed to remove it (see docs/install.md, or delete the block by hand)"
      fi
      ;;
  esac
  if has_block; then host_cleanup_block; fi
  log "clean; no '$marker' block in $hosts_file"
}

cmd_wait() {
  local args=() a hosts_given=false url
  while (($#)); do
    case "$1" in
      --absent) args+=(--absent) ;;
      --timeout) [[ $# -ge 2 ]] || usage_error "--timeout needs a value"; set_timeout --timeout "$2"; shift ;;
      --timeout=*) set_timeout --timeout "${1#--timeout=}" ;;
      -*) usage_error "unknown wait option '$1'" ;;
      *) args+=("$1") ;;
    esac
    shift
  done
  case $mode in
    host)
      for a in ${args[@]+"${args[@]}"}; do [[ "$a" == --absent ]] || hosts_given=true; done
      url=$(ready_url)
      if [[ -n "$url" ]] && read_pid >/dev/null; then
        args+=("--ready-url=$url")
      elif [[ $hosts_given == false ]]; then
        usage_error "nothing to wait for: give hostnames, or start the controller with metrics enabled"
      fi
      wait_hosts ${args[@]+"${args[@]}"} || die "wait failed (timeout $timeout): see the line above; log $log_file"
      ;;
    cluster) wait_hosts ${args[@]+"${args[@]}"} || die "wait failed (timeout $timeout)" ;;
  esac
}

cmd_status() {
  (($# == 0)) || usage_error "status takes no arguments"
  local rc=0
  "${mode}_status" || rc=$?
  exit "$rc"
}

cmd_metrics() { "${mode}_metrics"; }
cmd_logs() { "${mode}_logs"; }

# What start would run, installing nothing.
cmd_render() {
  (($# == 0)) || usage_error "render takes no arguments"
  case $mode in
    host)
      resolve_bin
      host_command
      printf '%q ' env "${run_env[@]}" "$bin" "${run_args[@]}"
      echo
      ;;
    cluster)
      need helm "https://helm.sh/docs/intro/install/"
      write_values
      # Without a cluster, helm assumes Kubernetes v1.20, below the chart's kubeVersion: the version this
      # project builds and tests (scripts/lib.sh) unless HOSTS_SYNC_HELM_ARGS says --kube-version.
      helm_cmd template "$release" "$chart" --namespace "$release_ns" -f "$values" \
        --kube-version "$KUBE_VERSION" ${helm_extra[@]+"${helm_extra[@]}"} \
        || die "helm template $release failed (see the line above)"
      ;;
  esac
}

main() {
  local verb=${1:-}
  [[ -n "$verb" ]] || { usage >&2; exit 2; }
  shift
  case "$verb" in -h | --help | help) usage; exit 0 ;; esac
  case "$mode" in host | cluster) ;; *) usage_error "HOSTS_SYNC_MODE must be host or cluster (got '$mode')" ;; esac
  all_namespaces=$(bool_setting HOSTS_SYNC_ALL_NAMESPACES "${HOSTS_SYNC_ALL_NAMESPACES:-false}")
  set_timeout HOSTS_SYNC_TIMEOUT "${HOSTS_SYNC_TIMEOUT:-120s}"
  case "$verb" in
    start | stop | cleanup | wait | status | metrics | logs | render) "cmd_$verb" "$@" ;;
    *) usage_error "unknown verb '$verb'" ;;
  esac
}

main "$@"
