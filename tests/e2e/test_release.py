"""The release artifacts, not the checkout: scripts/release.sh pushes the image and the chart to a local OCI
registry, and the chart is installed from there (`helm install oci://...`, no `kind load`): the node pulls the
image from the registry, the names reach the host's file, `helm uninstall` takes the block away."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from controller import __version__
from tests.e2e.conftest import HOST_FILE_CONTENT, REPO_ROOT, Registry, Tools, curl_by_name, show_file, step
from tests.e2e.test_kind import (  # noqa: F401  (tyk: the module-scoped fixture, shared)
    NAMESPACES,
    RELEASE,
    RELEASE_NS,
    TYK,
    check_then_uninstall,
    controller_pod,
    tyk,
    wait_hosts,
)

pytestmark = pytest.mark.timeout(900)


def release(registry: Registry, cluster: Tools, images: dict[str, str], out: Path) -> dict[str, str]:
    """scripts/release.sh against the local registry; its RELEASE_* lines."""
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "HELM": cluster.helm,
        "CRANE": registry.crane,
        # The base image of the e2e (official or the local stand-in), as the controller image is built.
        "PYTHON_IMAGE": images["python"],
    }
    env.pop("PYTHONPATH", None)
    argv = ["bash", str(REPO_ROOT / "scripts" / "release.sh"), "--registry", registry.host, "--plain-http"]
    started = time.monotonic()
    proc = cluster.run(*argv, "--out", str(out), env=env, timeout=900, check=False)
    print(proc.stderr, proc.stdout)
    assert proc.returncode == 0, f"scripts/release.sh exited {proc.returncode}"
    print(f"scripts/release.sh took {time.monotonic() - started:.0f}s")
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if line.startswith("RELEASE_"))


@pytest.mark.usefixtures("tyk")
def test_install_from_the_local_oci_registry(
    cluster: Tools, oci_registry: Registry, host_file: Path, images: dict[str, str], tmp_path: Path
) -> None:
    started = time.monotonic()
    step(f"scripts/release.sh --registry {oci_registry.host} --plain-http")
    released = release(oci_registry, cluster, images, tmp_path / "out")
    image = f"{oci_registry.host}/k8s-hosts-controller:{__version__}"
    assert released == {
        "RELEASE_VERSION": __version__,
        "RELEASE_IMAGE": image,
        "RELEASE_CHART": f"oci://{oci_registry.host}/charts/k8s-hosts-controller",
    }
    digest = cluster.run(oci_registry.crane, "digest", "--insecure", image).stdout.strip()
    wheels = sorted(p.name for p in (tmp_path / "out").glob("k8s_hosts_controller-*"))
    assert wheels == [
        f"k8s_hosts_controller-{__version__}-py3-none-any.whl",
        f"k8s_hosts_controller-{__version__}.tar.gz",
    ]

    show_file(host_file, "before helm install")
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    step("helm install from the OCI registry: the chart's default image (no --set image, no kind load)")
    cluster.helm_(
        "install", RELEASE, released["RELEASE_CHART"], "--version", __version__, "--plain-http",
        "--namespace", RELEASE_NS, "--create-namespace", "--set", f"namespaces={{{NAMESPACES}}}",
        "--wait", "--timeout", "5m", timeout=360,
    )  # fmt: skip
    daemonset = f"daemonset/{RELEASE}-k8s-hosts-controller"

    def check() -> None:
        cluster.kubectl_("-n", RELEASE_NS, "rollout", "status", daemonset, "--timeout=180s", timeout=200)
        pod = controller_pod(cluster)
        status = pod["status"]["containerStatuses"][0]
        print(f"pod image {status['image']}, imageID {status['imageID']}")
        assert pod["spec"]["containers"][0]["image"] == image
        assert status["imageID"] == f"{oci_registry.host}/k8s-hosts-controller@{digest}", (
            "pulled from the registry"
        )
        events = cluster.kubectl_json(
            "-n",
            RELEASE_NS,
            "get",
            "events",
            "--field-selector",
            f"involvedObject.name={pod['metadata']['name']}",
        )
        pulled = [e["message"] for e in events["items"] if e["reason"] == "Pulled"]
        print(pulled)
        assert any("Successfully pulled" in m and image in m for m in pulled), pulled
        hosts = [host for _, _, host in TYK]
        wait_hosts(host_file, hosts)
        show_file(host_file, "the released chart's block")
        curl_by_name(host_file, hosts[0])

    check_then_uninstall(cluster, host_file, check)
    print(f"release, install from the registry and uninstall took {time.monotonic() - started:.0f}s")
