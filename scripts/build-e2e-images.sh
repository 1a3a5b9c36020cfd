#!/usr/bin/env bash
# Makes every image the e2e needs in the local Docker engine, and prints their names as shell assignments
# (E2E_NODE_IMAGE=..., E2E_PYTHON_IMAGE=..., E2E_CONTROLLER_IMAGE=...) on the last lines.
#
# Where the official images can be pulled (a laptop, GitHub), it uses them: kindest/node and python:*-slim.
# Offline it builds stand-ins from package registries only:
#   * Kubernetes binaries built from k8s.io/kubernetes (tests/e2e/tools/kubernetes), etcd from the test control
#     plane, CoreDNS from its Go module, pause from Kubernetes' build/pause/linux/pause.c;
#   * Debian bookworm roots made with debootstrap: a kind node (systemd, Debian's containerd/runc/CNI plugins,
#     kind's own base files and entrypoint from the sigs.k8s.io/kind module), a kube-proxy image, and a Python
#     base for the repository's Dockerfile (--build-arg PYTHON_IMAGE=...);
#   * the component images imported into the node's containerd, as `kind build node-image` does.
# Then it builds the controller image from the repository's Dockerfile. Every step is a no-op when its output
# exists (binaries under the cache directory, images in the engine).
#
#   scripts/build-e2e-images.sh            auto: official images when they can be pulled, else stand-ins
#   E2E_IMAGES=local scripts/build-e2e-images.sh      always the stand-ins
set -euo pipefail
# shellcheck source=scripts/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/e2e/lib.sh"

COREDNS_VERSION=v1.13.1  # kubeadm v1.35's CoreDNS
PAUSE_VERSION=3.10.1     # kubeadm v1.35's pause
OFFICIAL_NODE_IMAGE=kindest/node:$KUBE_VERSION
OFFICIAL_PYTHON_IMAGE=python:3.11.14-slim-bookworm
LOCAL=k8s-hosts-controller-e2e
NODE_IMAGE=$LOCAL/node:$KUBE_VERSION
PYTHON_IMAGE=$LOCAL/python:3.11-bookworm
CONTROLLER_IMAGE=k8s-hosts-controller:e2e
total_start=$SECONDS

# ---- binaries ---------------------------------------------------------------------------------------------
build_binaries() {
  local kmod="$E2E_TOOLS/kubernetes" vflags
  vflags=$(kube_version_ldflags "$KUBE_VERSION")
  local name
  for name in kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    go_build "$E2E_BIN" "$name" "$kmod" "k8s.io/kubernetes/cmd/$name" "$vflags"
  done
  go_build "$E2E_BIN" kind "$E2E_TOOLS/kind" sigs.k8s.io/kind
  go_build "$E2E_BIN" coredns "$E2E_TOOLS/coredns" github.com/coredns/coredns
  if [[ ! -x "$E2E_BIN/pause" ]]; then
    command -v gcc >/dev/null || die "gcc is needed to build the pause binary: apt-get install gcc"
    local src
    src=$(cd "$kmod" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
    log "pause: compiling $src"
    gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-k8s-hosts-controller-e2e" -o "$E2E_BIN/pause" "$src"
  fi
  local cp_bin
  cp_bin=$(bash "$E2E_ROOT/scripts/build-controlplane.sh" | tail -1)
  [[ -x "$cp_bin/etcd" ]] || die "no etcd in $cp_bin (scripts/build-controlplane.sh)"
  ln -sf "$cp_bin/etcd" "$E2E_BIN/etcd"
}

# ---- Debian roots -----------------------------------------------------------------------------------------
debian_mirror() {
  local uri
  uri=$(grep -hs -m1 -E '^URIs: .*debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}') || true
  [[ -n "$uri" ]] || uri=$(grep -hs -m1 -E '^deb .*/debian/? ' /etc/apt/sources.list | awk '{print $2}') || true
  echo "${uri:-http://deb.debian.org/debian}"
}

# rootfs NAME PACKAGES: a debootstrap'd Debian bookworm in $E2E_CACHE/rootfs/NAME (a no-op when done).
rootfs() {
  local name=$1 packages=$2 dir="$E2E_CACHE/rootfs/$1"
  if [[ -f "$dir/.done" ]]; then
    log "rootfs $name: cached"
    return
  fi
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  rm -rf "$dir" && mkdir -p "$dir" "$E2E_CACHE/debs"
  log "rootfs $name: debootstrap bookworm (+ $packages)"
  local start=$SECONDS
  debootstrap --variant=minbase --cache-dir="$E2E_CACHE/debs" --include="$packages" \
    bookworm "$dir" "$(debian_mirror)" >"$E2E_CACHE/rootfs/$name.log" 2>&1 ||
    { tail -20 "$E2E_CACHE/rootfs/$name.log" >&2; die "debootstrap of $name failed"; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  touch "$dir/.done"
  log "rootfs $name: done in $((SECONDS - start))s"
}

# ---- images -----------------------------------------------------------------------------------------------
kube_proxy_image() {
  local image=registry.k8s.io/kube-proxy:$KUBE_VERSION
  have_image "$image" && { log "image $image: present"; return; }
  rootfs kube-proxy iptables,conntrack,ipset,kmod
  local dir="$E2E_CACHE/rootfs/kube-proxy"
  install -m 0755 "$E2E_BIN/kube-proxy" "$dir/usr/local/bin/kube-proxy.real"
  # The node picks iptables-legacy or -nft by what holds rules (kind's entrypoint); kube-proxy must use the same.
  install -m 0755 "$E2E_ROOT/tests/e2e/images/kube-proxy-wrapper.sh" "$dir/usr/local/bin/kube-proxy"
  import_dir "$dir" "$image" -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]'
}

python_image() {
  choose_image PYTHON_IMAGE "$OFFICIAL_PYTHON_IMAGE" "$PYTHON_IMAGE" && return
  rootfs python python3,python3-pip,python3-venv,ca-certificates,wget
  local dir="$E2E_CACHE/rootfs/python"
  # Like the official image: pip installs into the system Python (no PEP 668 marker), `python` exists.
  rm -f "$dir"/usr/lib/python3*/EXTERNALLY-MANAGED
  ln -sf python3 "$dir/usr/bin/python"
  # The host's trust store: package registries behind a TLS-inspecting proxy answer with its certificate.
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
  import_dir "$dir" "$PYTHON_IMAGE" -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    -c 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    -c 'CMD ["python3"]'
}

node_rootfs() {
  local dir="$E2E_CACHE/rootfs/node" kind_dir
  rootfs node systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,iptables,nftables,conntrack,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,ca-certificates,curl,jq,procps,e2fsprogs,socat,ebtables
  [[ -f "$dir/.kind-done" ]] && return
  kind_dir=$(cd "$E2E_TOOLS/kind" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)/images/base/files
  log "rootfs node: kind base files from $kind_dir"
  # What kind's images/base/Dockerfile does, on Debian's packages.
  install -d -m 0755 "$dir/kind/bin" "$dir/etc/kubernetes/manifests" "$dir/opt/cni"
  install -m 0755 "$kind_dir"/usr/local/bin/* "$dir/usr/local/bin/"
  install -m 0755 "$kind_dir"/kind/bin/* "$dir/kind/bin/"
  install -m 0644 "$kind_dir"/etc/crictl.yaml "$dir/etc/"
  install -m 0644 "$kind_dir"/etc/default/kubelet "$dir/etc/default/"
  install -m 0644 "$kind_dir"/etc/sysctl.d/* "$dir/etc/sysctl.d/"
  install -m 0644 "$kind_dir"/etc/systemd/system/*.service "$kind_dir"/etc/systemd/system/*.slice "$dir/etc/systemd/system/"
  install -d "$dir/etc/systemd/system/kubelet.service.d"
  install -m 0644 "$kind_dir"/etc/systemd/system/kubelet.service.d/* "$dir/etc/systemd/system/kubelet.service.d/"
  # Debian's containerd lives in /usr/bin; raising its OOM priority needs CAP_SYS_RESOURCE, which the node
  # may not have (then systemd would refuse to start it).
  ln -sf /usr/bin/containerd "$dir/usr/local/bin/containerd"
  sed -i '/^OOMScoreAdjust=/d' "$dir/etc/systemd/system/containerd.service"
  ln -sfn /usr/lib/cni "$dir/opt/cni/bin"
  install -m 0755 "$E2E_BIN/runc-wrapper" "$dir/usr/local/bin/runc-wrapper"
  install -d "$dir/etc/containerd" "$dir/etc/cni/net.d"
  sed "s/@PAUSE_VERSION@/$PAUSE_VERSION/" "$E2E_ROOT/tests/e2e/images/containerd-config.toml" >"$dir/etc/containerd/config.toml"
  install -m 0644 "$E2E_ROOT/tests/e2e/images/10-bridge.conflist" "$dir/etc/cni/net.d/"
  chroot "$dir" ctr oci spec |
    jq '.hooks.createContainer[.hooks.createContainer|length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
    jq 'del(.process.rlimits)' >"$dir/etc/containerd/cri-base.json"
  find "$dir/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "$dir"/lib/systemd/system/multi-user.target.wants/* "$dir"/etc/systemd/system/*.wants/* \
    "$dir"/lib/systemd/system/local-fs.target.wants/* "$dir"/lib/systemd/system/sockets.target.wants/*udev* \
    "$dir"/lib/systemd/system/sockets.target.wants/*initctl* "$dir"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >>"$dir/etc/systemd/journald.conf"
  chroot "$dir" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
  chroot "$dir" systemctl mask systemd-binfmt.service >/dev/null 2>&1
  local b
  for b in kubelet kubeadm kubectl; do install -m 0755 "$E2E_BIN/$b" "$dir/usr/bin/$b"; done
  echo "$KUBE_VERSION" >"$dir/kind/version"
  touch "$dir/.kind-done"
}

node_image() {
  choose_image NODE_IMAGE "$OFFICIAL_NODE_IMAGE" "$NODE_IMAGE" && return
  build_binaries
  local reg=registry.k8s.io
  local name
  for name in kube-apiserver kube-controller-manager kube-scheduler; do
    binary_image "$reg/$name:$KUBE_VERSION" "$name"
  done
  # kubeadm names etcd 3.6.6-0; the e2e's kubeadm patch points it at this tag (E2E_ETCD_TAG, the version built).
  binary_image "$reg/etcd:$ETCD_VERSION" etcd
  binary_image "$reg/coredns/coredns:$COREDNS_VERSION" coredns
  binary_image "$reg/pause:$PAUSE_VERSION" pause
  kube_proxy_image
  node_rootfs
  local base=$LOCAL/node-base:$KUBE_VERSION
  have_image "$base" || import_dir "$E2E_CACHE/rootfs/node" "$base" -c 'ENV container=docker' \
    -c 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]'
  # Pre-load the component images into the node's containerd, then commit: what `kind build node-image` does.
  local builder=$LOCAL-node-build
  docker rm -f "$builder" >/dev/null 2>&1 || true
  docker run -d --privileged --name "$builder" --entrypoint /usr/bin/containerd "$base" >/dev/null
  for _ in $(seq 1 30); do docker exec "$builder" ctr version >/dev/null 2>&1 && break; sleep 1; done
  for name in kube-apiserver:$KUBE_VERSION kube-controller-manager:$KUBE_VERSION kube-scheduler:$KUBE_VERSION \
    kube-proxy:$KUBE_VERSION "etcd:$ETCD_VERSION" coredns/coredns:$COREDNS_VERSION pause:$PAUSE_VERSION; do
    log "node image: loading $reg/$name"
    docker save "$reg/$name" | docker exec -i "$builder" ctr --namespace=k8s.io images import \
      --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - >/dev/null
  done
  docker exec "$builder" ctr --namespace=k8s.io images ls -q | grep -v "@sha256:"
  docker stop "$builder" >/dev/null
  docker commit -c 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' -c 'CMD []' \
    -c 'ENV container=docker' "$builder" "$NODE_IMAGE" >/dev/null
  docker rm "$builder" >/dev/null
  log "image $NODE_IMAGE: built"
}

controller_image() {
  local client
  client=$(buildkit_docker)
  log "image $CONTROLLER_IMAGE: $client build (PYTHON_IMAGE=$PYTHON_IMAGE)"
  DOCKER_BUILDKIT=1 "$client" build -q --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" -t "$CONTROLLER_IMAGE" "$E2E_ROOT" >/dev/null
  log "image $CONTROLLER_IMAGE: $(docker run --rm "$CONTROLLER_IMAGE" --version)"
  # The previous build of the same tag, now untagged.
  docker image prune -f --filter dangling=true --filter "label=org.opencontainers.image.title=k8s-hosts-controller" >/dev/null
}

docker info >/dev/null 2>&1 || die "no Docker engine answers: run scripts/e2e/docker-up.sh first"
build_binaries_for_host() { go_build "$E2E_BIN" kind "$E2E_TOOLS/kind" sigs.k8s.io/kind; }
build_binaries_for_host
node_image
python_image
controller_image
log "all images ready in $((SECONDS - total_start))s"
echo "E2E_NODE_IMAGE=$NODE_IMAGE"
echo "E2E_ETCD_TAG=$ETCD_VERSION"
echo "E2E_PYTHON_IMAGE=$PYTHON_IMAGE"
echo "E2E_CONTROLLER_IMAGE=$CONTROLLER_IMAGE"
echo "E2E_KIND=$E2E_BIN/kind"
