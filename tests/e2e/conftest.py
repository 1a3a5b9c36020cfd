"""The e2e's kind cluster: the repository's kind-config.yaml with a stand-in for the host's /etc/hosts.

Run through `make e2e` (scripts/e2e/run.sh), which provides the Docker engine, the images and the tools in
the environment (E2E_*). Everything is checked from the host side, as a user would: the stand-in file on this
machine, kubectl, helm, curl.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from testkit.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
KIND_CONFIG = REPO_ROOT / "kind-config.yaml"
# What a host's /etc/hosts looks like; the e2e's file starts as this and must end byte for byte as this.
HOST_FILE_CONTENT = (
    b"127.0.0.1\tlocalhost\n"
    b"::1\tlocalhost ip6-localhost ip6-loopback\n"
    b"# the user's own lines, never touched\n"
    b"10.11.12.13 build-cache.internal\n"
)


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def show_file(path: Path, title: str) -> None:
    print(f"--- {path} ({title}):\n{path.read_text()}--- end", flush=True)


def curl_by_name(host_file: Path, host: str, path: str = "/") -> str:
    """curl http://HOST/PATH resolving through the managed file (by_name below)."""
    script = f"getent hosts {host} && curl -fsS --noproxy '*' --max-time 10 'http://{host}{path}'"
    print(f"$ curl 'http://{host}{path}'  (resolved through {host_file})", flush=True)
    proc = subprocess.run(
        by_name(host_file, ["sh", "-c", script]), capture_output=True, text=True, timeout=30
    )
    print(proc.stdout + proc.stderr, flush=True)
    assert proc.returncode == 0, f"curl http://{host}/ failed ({proc.returncode})"
    return proc.stdout


def env_or_fail(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set: run the e2e with `make e2e` (scripts/e2e/run.sh)", pytrace=False)
    return value


@dataclass
class Tools:
    kind: str
    kubectl: str
    helm: str
    kubeconfig: Path

    def run(self, *argv: str, check: bool = True, timeout: float = 300, quiet: bool = False, **kw):
        if not quiet:
            print(f"$ {shlex.join(argv)}", flush=True)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
        if check and proc.returncode != 0:
            output = f"{proc.stdout}\n{proc.stderr}"
            raise AssertionError(f"{shlex.join(argv)} exited {proc.returncode}:\n{output}")
        return proc

    def kubectl_(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(self.kubectl, "--kubeconfig", str(self.kubeconfig), *args, **kw)

    def helm_(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(self.helm, "--kubeconfig", str(self.kubeconfig), *args, **kw)

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl_(*args, "-o", "json", quiet=True).stdout)


class HostsSync:
    """scripts/hosts-sync.sh in host mode, with the controller CLI of the running environment, against the
    e2e's cluster and the stand-in file (which the kind node bind-mounts: writes in place)."""

    def __init__(self, tools: Tools, host_file: Path, namespaces: str, work: Path, *extra_args: str) -> None:
        bin_dir = Path(sys.executable).parent
        cli = shutil.which("k8s-hosts-controller", path=str(bin_dir)) or "k8s-hosts-controller"
        self.log_file = work / "controller.log"
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "HOSTS_SYNC_NAMESPACES": namespaces,
            "HOSTS_SYNC_HOSTS_FILE": str(host_file),
            "HOSTS_SYNC_KUBECONFIG": str(tools.kubeconfig),
            "HOSTS_SYNC_BIN": cli,
            "HOSTS_SYNC_PID_FILE": str(work / "controller.pid"),
            "HOSTS_SYNC_LOG_FILE": str(self.log_file),
            "HOSTS_SYNC_WRITE_MODE": "inplace",
            "HOSTS_SYNC_METRICS_ADDR": f"127.0.0.1:{free_port()}",
            "HOSTS_SYNC_TIMEOUT": "120s",
            "HOSTS_SYNC_EXTRA_ARGS": " ".join(extra_args),
        }

    def __call__(self, *args: str) -> None:
        print(f"$ scripts/hosts-sync.sh {' '.join(args)}", flush=True)
        script = str(REPO_ROOT / "scripts" / "hosts-sync.sh")
        proc = subprocess.run(
            ["bash", script, *args], env=self.env, capture_output=True, text=True, timeout=200
        )
        print(proc.stdout + proc.stderr, flush=True)
        assert proc.returncode == 0, f"hosts-sync.sh {' '.join(args)} exited {proc.returncode}"

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""


def tools_path(tools: Tools) -> str:
    """PATH with the e2e's kind, kubectl and helm and this Python's scripts first: what the repository's
    scripts run, found as a user's shell finds them."""
    dirs = {str(Path(t).parent) for t in (tools.kind, tools.kubectl, tools.helm, sys.executable)}
    return os.pathsep.join([*sorted(dirs), os.environ["PATH"]])


def cgroup_v1() -> bool:
    return not Path("/sys/fs/cgroup/cgroup.controllers").exists()


def overlay_config(hosts_file: Path, local_images: bool) -> dict:
    """kind-config.yaml as the user has it, with only what this run needs changed:
    - the extraMounts hostPath /etc/hosts swapped for the stand-in file (the test never touches /etc/hosts);
    - with the locally built node image: no default CNI (kindnetd is not built here; the node has a bridge
      CNI config) and etcd's image tag (the etcd version built here);
    - on cgroup v1 machines: Kubernetes 1.35's kubelet refuses cgroup v1 unless failCgroupV1 is false;
    - kind's local-registry pattern: containerd reads per-registry hosts.toml files from
      /etc/containerd/certs.d (the `oci_registry` fixture writes the one of the e2e's local registry).
    """
    config = yaml.safe_load(KIND_CONFIG.read_text())
    swapped = 0
    for node in config["nodes"]:
        for mount in node.get("extraMounts", []):
            if mount["hostPath"] == "/etc/hosts":
                mount["hostPath"] = str(hosts_file)
                swapped += 1
    assert swapped == 1, "kind-config.yaml mounts the host's /etc/hosts exactly once"
    config.setdefault("containerdConfigPatches", []).append(
        '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
    )
    patches = config.setdefault("kubeadmConfigPatches", [])
    if cgroup_v1():
        patches.append("kind: KubeletConfiguration\nfailCgroupV1: false\n")
    if local_images:
        config.setdefault("networking", {})["disableDefaultCNI"] = True
        tag = env_or_fail("E2E_ETCD_TAG")  # the etcd built into the local node image
        patches.append(f"kind: ClusterConfiguration\netcd:\n  local:\n    imageTag: {tag}\n")
    return config


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    return {
        "node": env_or_fail("E2E_NODE_IMAGE"),
        "python": env_or_fail("E2E_PYTHON_IMAGE"),
        "controller": env_or_fail("E2E_CONTROLLER_IMAGE"),
    }


def local(images: dict[str, str]) -> bool:
    """True with the stand-in images built here (no registry), False with the official ones."""
    return not images["node"].startswith("kindest/")


def chart_image_args(images: dict[str, str]) -> list[str]:
    """helm --set arguments for the images: ours, and offline the `helm test` pod's image too (the chart's
    default busybox cannot be pulled there; the Python stand-in has sh and wget)."""
    repo, _, tag = images["controller"].rpartition(":")
    args = ["--set", f"image.repository={repo}", "--set", f"image.tag={tag}"]
    if local(images):
        test_repo, _, test_tag = images["python"].rpartition(":")
        args += ["--set", f"tests.image.repository={test_repo}", "--set", f"tests.image.tag={test_tag}"]
    return args


@pytest.fixture(scope="session")
def host_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in for the host's /etc/hosts (0644, root-owned), mounted into the node by kind."""
    path = tmp_path_factory.mktemp("host-etc", numbered=True) / "hosts"
    path.write_bytes(HOST_FILE_CONTENT)
    path.chmod(0o644)
    path.parent.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def cluster(
    images: dict[str, str], host_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tools]:
    work = tmp_path_factory.mktemp("kind")
    tools = Tools(
        kind=env_or_fail("E2E_KIND"),
        kubectl=env_or_fail("E2E_KUBECTL"),
        helm=env_or_fail("E2E_HELM"),
        kubeconfig=work / "kubeconfig",
    )
    name = os.environ.get("E2E_CLUSTER", "k8s-hosts-e2e")
    config = work / "kind-config.yaml"
    config.write_text(yaml.safe_dump(overlay_config(host_file, local(images)), sort_keys=False))
    step(f"kind create cluster with the repository's kind-config.yaml (overlay: {config})")
    print(config.read_text())
    tools.run(tools.kind, "delete", "cluster", "--name", name, check=False)
    started = time.monotonic()
    created = tools.run(
        tools.kind, "create", "cluster", "--name", name, "--config", str(config), "--image", images["node"],
        "--kubeconfig", str(tools.kubeconfig), "--retain", timeout=600, check=False,
    )  # fmt: skip
    print(created.stdout + created.stderr)
    if created.returncode != 0:
        logs = work / "kind-logs"
        tools.run(tools.kind, "export", "logs", str(logs), "--name", name, check=False)
        for unit in ("kubelet.log", "containerd.log", "journal.log"):
            found = list(logs.rglob(unit))
            if found:
                tail = found[0].read_text(errors="replace").splitlines()[-60:]
                print(f"--- {unit} (tail)\n" + "\n".join(tail))
        tools.run(tools.kind, "delete", "cluster", "--name", name, check=False)
        pytest.fail(f"kind create cluster failed ({created.returncode}); node logs above", pytrace=False)
    try:
        tools.kubectl_("wait", "--for=condition=Ready", "node", "--all", "--timeout=240s", timeout=300)
        print(f"cluster ready in {time.monotonic() - started:.0f}s")
        print(tools.kubectl_("get", "nodes", "-o", "wide").stdout)
        load_images(tools, images["controller"], images["python"])
        yield tools
    finally:
        if not os.environ.get("E2E_KEEP_CLUSTER"):
            step("kind delete cluster")
            tools.run(tools.kind, "delete", "cluster", "--name", name, check=False)


def by_name(host_file: Path, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
    """ARGV run so that every name it resolves is looked up in the managed file, as on a machine whose
    /etc/hosts it is: a private mount namespace binds the file over /etc/hosts (glibc reads exactly what the
    controller wrote; this machine's own /etc/hosts is untouched). In place writes to the file show through
    the bind, so a process started this way follows the file as it changes. ENV is set for ARGV (through
    env(1), so that it survives sudo)."""
    script = 'mount --bind "$1" /etc/hosts && shift && exec "$@"'
    wrapped = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "by-name"]
    wrapped += [str(host_file), *(["env", *(f"{k}={v}" for k, v in env.items())] if env else []), *argv]
    if os.geteuid() != 0:  # a mount namespace of one's own needs root (GitHub's runners: passwordless sudo)
        wrapped = ["sudo", "-n", *wrapped]
    return wrapped


def load_images(cluster: Tools, *images: str) -> None:
    name = os.environ.get("E2E_CLUSTER", "k8s-hosts-e2e")
    for image in images:
        cluster.run(cluster.kind, "load", "docker-image", image, "--name", name, timeout=600)


@pytest.fixture(scope="session")
def node_ip(cluster: Tools) -> str:
    node = cluster.kubectl_json("get", "nodes")["items"][0]
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


@pytest.fixture(scope="session")
def lb_pool(cluster: Tools):
    """MetalLB, the Gateway API CRDs and Traefik (Ingress and Gateway providers), installed once for
    test_lb.py and test_gateway.py (tests/e2e/lb.py); they go with the cluster. Yields MetalLB's pool."""
    from tests.e2e import lb  # lb.py imports this module

    return lb.install(cluster)


@dataclass
class Registry:
    """The local OCI registry: `host` is its name on this machine (localhost:PORT) and, through the hosts.toml
    written on every node, for the nodes' containerd too."""

    host: str
    crane: str


def kind_gateway() -> str:
    """The IPv4 gateway of Docker's `kind` network: this machine, as the nodes reach it."""
    proc = subprocess.run(
        ["docker", "network", "inspect", "kind", "-f", "{{json .IPAM.Config}}"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return next(c["Gateway"] for c in json.loads(proc.stdout) if "." in c.get("Gateway", ""))


@pytest.fixture(scope="session")
def oci_registry(cluster: Tools) -> Iterator[Registry]:
    """An in-memory OCI registry (go-containerregistry's, scripts/build-release-tools.sh) on a free port
    of this machine, on loopback and on the kind network's gateway, and kind's documented local-registry
    pattern: each node's containerd maps localhost:PORT to http://<the kind network's gateway>:PORT, so an
    image named localhost:PORT/... is pulled from it."""
    build = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "build-release-tools.sh")],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    tools_bin = Path(build.stdout.strip().splitlines()[-1])
    port = free_port()
    gateway = kind_gateway()
    step(f"local OCI registry on 127.0.0.1:{port} and {gateway}:{port} (the kind network's gateway)")
    proc = subprocess.Popen(
        [str(tools_bin / "local-registry"), "-listen", f"127.0.0.1:{port},{gateway}:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        host = f"localhost:{port}"
        hosts_toml = f'[host."http://{gateway}:{port}"]\n  capabilities = ["pull", "resolve"]\n'
        nodes = cluster.run(
            cluster.kind, "get", "nodes", "--name", os.environ.get("E2E_CLUSTER", "k8s-hosts-e2e")
        )
        for node in nodes.stdout.split():
            directory = f"/etc/containerd/certs.d/{host}"
            cluster.run("docker", "exec", node, "mkdir", "-p", directory)
            cluster.run(
                "docker", "exec", "-i", node, "cp", "/dev/stdin", f"{directory}/hosts.toml", input=hosts_toml
            )
        crane = str(tools_bin / "crane")
        deadline = time.monotonic() + 30
        while cluster.run(crane, "catalog", "--insecure", host, check=False, quiet=True).returncode != 0:
            assert time.monotonic() < deadline, f"the registry on {host} does not answer"
            time.sleep(0.5)
        yield Registry(host=host, crane=crane)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
