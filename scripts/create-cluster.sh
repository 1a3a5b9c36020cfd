#!/usr/bin/env bash
# kind cluster + cloud-provider-kind (LoadBalancer IPs) + ingress-nginx, for k8s-hosts-controller.
# Run with --help for the verbs and the environment variables.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/create-cluster.sh [create|delete|lb-address|-h|--help]

  create (default)  create the kind cluster from kind-config.yaml (kept when it exists), start
                    cloud-provider-kind in the background (kept when it runs), install ingress-nginx with its
                    controller Service of type $NGINX_SVC_TYPE, and wait until the LoadBalancer has an address.
                    Safe to run again: every step is skipped or upgraded in place.
  delete            uninstall k8s-hosts-controller from the cluster when it is installed there and wait until
                    its block has left the hosts file (scripts/hosts-sync.sh stop), stop the
                    cloud-provider-kind started here, and delete the kind cluster. A bare `kind delete cluster`
                    runs no cleanup: the block would stay, pointing at a cluster that is gone.
  lb-address        print the ingress-nginx LoadBalancer address

Environment (defaults in brackets):
  CLUSTER_NAME                  kind cluster name [hosts-sync]
  KIND_CONFIG                   kind config [<repo>/kind-config.yaml]
  KIND_NODE_IMAGE               node image, e.g. kindest/node:v1.35.0 [kind's default]
  NGINX_SVC_TYPE                ingress-nginx controller Service type: LoadBalancer | NodePort [LoadBalancer]
  INGRESS_NGINX_CHART_VERSION   ingress-nginx Helm chart version [4.14.0]
  INGRESS_NGINX_NAMESPACE       [ingress-nginx]
  CLOUD_PROVIDER_KIND           cloud-provider-kind command [cloud-provider-kind]
  CLOUD_PROVIDER_KIND_SUDO      true: run cloud-provider-kind through sudo (needed when docker needs sudo) [false]
  CLOUD_PROVIDER_KIND_PID_FILE  [${XDG_RUNTIME_DIR:-/tmp}/cloud-provider-kind.pid]
  CLOUD_PROVIDER_KIND_LOG_FILE  [${XDG_RUNTIME_DIR:-/tmp}/cloud-provider-kind.log]
  LB_TIMEOUT                    seconds to wait for the LoadBalancer address [180]
  KUBECONFIG                    where kind writes the cluster's credentials [~/.kube/config]
  HOSTS_SYNC_*                  delete: the release, hosts file and marker of scripts/hosts-sync.sh (see its --help)
EOF
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cluster=${CLUSTER_NAME:-hosts-sync}
kind_config=${KIND_CONFIG:-$root/kind-config.yaml}
node_image=${KIND_NODE_IMAGE:-}
svc_type=${NGINX_SVC_TYPE:-LoadBalancer}
nginx_version=${INGRESS_NGINX_CHART_VERSION:-4.14.0}
nginx_ns=${INGRESS_NGINX_NAMESPACE:-ingress-nginx}
cpk=${CLOUD_PROVIDER_KIND:-cloud-provider-kind}
cpk_sudo=${CLOUD_PROVIDER_KIND_SUDO:-false}
run_dir=${XDG_RUNTIME_DIR:-/tmp}
cpk_pid_file=${CLOUD_PROVIDER_KIND_PID_FILE:-$run_dir/cloud-provider-kind.pid}
cpk_log_file=${CLOUD_PROVIDER_KIND_LOG_FILE:-$run_dir/cloud-provider-kind.log}
lb_timeout=${LB_TIMEOUT:-180}
context=kind-$cluster

log() { echo "[create-cluster] $*" >&2; }
die() { echo "[create-cluster] error: $*" >&2; exit 1; }

# Every missing tool is reported at once, each with how to install it.
check_tools() {
  local missing=() tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null && continue
    case "$tool" in
      docker) missing+=("docker: install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop (https://docs.docker.com/desktop/)") ;;
      kind) missing+=("kind: go install sigs.k8s.io/kind@v0.32.0, or see https://kind.sigs.k8s.io/docs/user/quick-start/#installation") ;;
      kubectl) missing+=("kubectl: see https://kubernetes.io/docs/tasks/tools/ (or: brew install kubectl)") ;;
      helm) missing+=("helm: see https://helm.sh/docs/intro/install/ (or: brew install helm)") ;;
      "$cpk") missing+=("$cpk: go install sigs.k8s.io/cloud-provider-kind@v0.9.0 (then put \$(go env GOPATH)/bin on PATH), or see https://github.com/kubernetes-sigs/cloud-provider-kind#install") ;;
      *) missing+=("$tool") ;;
    esac
  done
  if ((${#missing[@]})); then
    echo "[create-cluster] error: missing tools:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
  fi
}

alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z* ]]
}

# grep without -q: it must read to the end, or the writer dies of SIGPIPE when the name is not the last line and
# pipefail turns a found cluster into "no cluster".
cluster_exists() { kind get clusters 2>/dev/null | grep -x -- "$cluster" >/dev/null; }

# Before the cluster goes: the controller's pods remove their block only when they are stopped (a deleted
# node container runs no preStop and gets no SIGTERM), so uninstall the chart and wait for the block to go.
uninstall_hosts_sync() {
  command -v helm >/dev/null || { log "helm not installed: not checking for a k8s-hosts-controller release"; return 0; }
  local release=${HOSTS_SYNC_RELEASE:-k8s-hosts-controller} release_ns=${HOSTS_SYNC_RELEASE_NAMESPACE:-k8s-hosts-controller}
  helm --kube-context "$context" status "$release" --namespace "$release_ns" >/dev/null 2>&1 || return 0
  log "uninstalling $release (k8s-hosts-controller) first, so that its block leaves the hosts file"
  HOSTS_SYNC_MODE=cluster HOSTS_SYNC_CONTEXT=$context "$root/scripts/hosts-sync.sh" stop \
    || die "the block of $release is still in the hosts file: run 'HOSTS_SYNC_MODE=cluster HOSTS_SYNC_CONTEXT=$context scripts/hosts-sync.sh cleanup', then delete again"
}

create_cluster() {
  if cluster_exists; then
    log "kind cluster '$cluster' exists; keeping it"
    kind export kubeconfig --name "$cluster" >/dev/null
  else
    [[ -f "$kind_config" ]] || die "kind config $kind_config not found (set KIND_CONFIG)"
    local args=(create cluster --name "$cluster" --config "$kind_config" --wait 120s)
    if [[ -n "$node_image" ]]; then args+=(--image "$node_image"); fi
    log "kind ${args[*]}"
    kind "${args[@]}" || die "kind create cluster failed (is the docker daemon running? docker info)"
  fi
  kubectl config use-context "$context" >/dev/null
  # Single-node kind: let the control-plane node carry LoadBalancer traffic (cloud-provider-kind honours
  # this label, which kubeadm sets on control-plane nodes).
  local node label=node.kubernetes.io/exclude-from-external-load-balancers
  for node in $(kubectl --context "$context" get nodes -o name); do
    if kubectl --context "$context" get "$node" -o jsonpath="{.metadata.labels}" | grep "\"$label\"" >/dev/null; then
      kubectl --context "$context" label "$node" "$label-" >/dev/null
      log "removed label $label from $node"
    fi
  done
}

start_cloud_provider() {
  local pid
  if [[ -f "$cpk_pid_file" ]] && pid=$(tr -cd '0-9' <"$cpk_pid_file") && [[ -n "$pid" ]] && alive "$pid"; then
    log "cloud-provider-kind already running (PID $pid, log $cpk_log_file)"
    return
  fi
  if command -v pgrep >/dev/null && pid=$(pgrep -x "$(basename "$cpk")" | sed -n 1p) && [[ -n "$pid" ]]; then
    log "cloud-provider-kind already running (PID $pid, not started by this script); using it"
    return
  fi
  mkdir -p "$(dirname "$cpk_pid_file")" "$(dirname "$cpk_log_file")"
  local cmd=("$(command -v "$cpk")")
  if [[ "$cpk_sudo" == true && $(id -u) -ne 0 ]]; then cmd=(sudo -n "${cmd[@]}"); fi
  echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) create-cluster: ${cmd[*]}" >>"$cpk_log_file"
  "${cmd[@]}" </dev/null >>"$cpk_log_file" 2>&1 &
  pid=$!
  echo "$pid" >"$cpk_pid_file"
  # A start failure (no docker access, bad flag) shows within a moment; a late one surfaces in the LB wait.
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    alive "$pid" || { tail -n 20 "$cpk_log_file" >&2; rm -f "$cpk_pid_file"; die "cloud-provider-kind exited at once (log $cpk_log_file)"; }
    [[ $i == 10 ]] || sleep 0.2
  done
  log "cloud-provider-kind started (PID $pid in $cpk_pid_file, log $cpk_log_file)"
}

install_ingress_nginx() {
  log "ingress-nginx $nginx_version, controller Service type $svc_type"
  helm upgrade --install ingress-nginx ingress-nginx \
    --repo https://kubernetes.github.io/ingress-nginx --version "$nginx_version" \
    --kube-context "$context" --namespace "$nginx_ns" --create-namespace \
    --set controller.service.type="$svc_type" \
    --set controller.ingressClassResource.default=true \
    --set controller.watchIngressWithoutClass=true \
    --set controller.admissionWebhooks.enabled=false \
    --wait --timeout 5m \
    || die "helm install of ingress-nginx failed (kubectl --context $context -n $nginx_ns get pods,events)"
}

lb_address() {
  kubectl --context "$context" -n "$nginx_ns" get svc ingress-nginx-controller \
    -o jsonpath='{.status.loadBalancer.ingress[0].ip}{.status.loadBalancer.ingress[0].hostname}'
}

wait_lb() {
  local deadline=$((SECONDS + lb_timeout)) addr=""
  log "waiting up to ${lb_timeout}s for the LoadBalancer address of $nginx_ns/ingress-nginx-controller"
  while :; do
    addr=$(lb_address)
    [[ -z "$addr" ]] || break
    if ((SECONDS >= deadline)); then
      [[ -f "$cpk_log_file" ]] && tail -n 20 "$cpk_log_file" >&2
      die "no LoadBalancer address after ${lb_timeout}s: is cloud-provider-kind running? (log $cpk_log_file)"
    fi
    sleep 1
  done
  log "ingress-nginx LoadBalancer address: $addr"
  echo "$addr"
}

verb=${1:-create}
case "$verb" in
  -h | --help | help) usage; exit 0 ;;
  create)
    case "$svc_type" in LoadBalancer | NodePort | ClusterIP) ;; *) die "NGINX_SVC_TYPE must be LoadBalancer, NodePort or ClusterIP (got '$svc_type')" ;; esac
    tools=(docker kind kubectl helm)
    if [[ $svc_type == LoadBalancer ]]; then tools+=("$cpk"); fi
    check_tools "${tools[@]}"
    docker info >/dev/null 2>&1 || die "the docker daemon is not reachable (start Docker; on Linux add yourself to the docker group or run with sudo)"
    create_cluster
    if [[ $svc_type == LoadBalancer ]]; then start_cloud_provider; fi
    install_ingress_nginx
    if [[ $svc_type == LoadBalancer ]]; then wait_lb; fi
    log "ready: kubectl --context $context; Ingress class 'nginx'"
    ;;
  delete)
    check_tools kind
    if cluster_exists; then uninstall_hosts_sync; fi
    if [[ -f "$cpk_pid_file" ]]; then
      pid=$(tr -cd '0-9' <"$cpk_pid_file")
      if [[ -n "$pid" ]] && alive "$pid"; then
        log "stopping cloud-provider-kind (PID $pid)"
        kill "$pid" 2>/dev/null || sudo -n kill "$pid" || die "could not stop cloud-provider-kind (PID $pid)"
      fi
      rm -f "$cpk_pid_file"
    fi
    if cluster_exists; then
      kind delete cluster --name "$cluster"
    else
      log "no kind cluster '$cluster'"
    fi
    ;;
  lb-address)
    check_tools kubectl
    addr=$(lb_address)
    [[ -n "$addr" ]] || die "no LoadBalancer address yet for $nginx_ns/ingress-nginx-controller"
    echo "$addr"
    ;;
  *) echo "[create-cluster] error: unknown verb '$verb'" >&2; usage >&2; exit 2 ;;
esac
