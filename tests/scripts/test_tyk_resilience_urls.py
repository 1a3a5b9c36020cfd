"""examples/tyk/test-resilience-local.hosts-sync.sh: hostsSyncResilienceUrls, as a script sources it. The
success path (names written by the chart, Toxiproxy's API answering by name) is the e2e's resilience test
(tests/e2e/test_resilience.py); here, what a user sees when the names are not there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from testkit.tools import find_tool

REPO = Path(__file__).resolve().parents[2]
DROP_IN = REPO / "examples" / "tyk" / "test-resilience-local.hosts-sync.sh"
CONTROLLER = find_tool("k8s-hosts-controller")


def resilience_urls(hosts_file: Path, **env: str) -> subprocess.CompletedProcess:
    if CONTROLLER is None:
        pytest.fail("k8s-hosts-controller not found: pip install -e .", pytrace=False)
    script = f'set -euo pipefail; source "{DROP_IN}"; hostsSyncResilienceUrls; echo "got $GATEWAY_URL"'
    return subprocess.run(
        ["bash", "-c", script],
        env={
            **os.environ,
            "HOSTS_SYNC_BIN": str(CONTROLLER),
            "HOSTS_SYNC_HOSTS_FILE": str(hosts_file),
            "HOSTS_SYNC_TIMEOUT": "1s",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_names_fail_with_the_names_and_no_urls(tmp_path: Path):
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "127.0.0.1 localhost\n#### BEGIN TYK-K8S-HOSTS ####\n"
        "172.18.255.200 chart-gw.local  # tyk/gateway-ingress\n#### END TYK-K8S-HOSTS ####\n"
    )
    result = resilience_urls(hosts)
    assert result.returncode == 1, result
    assert "toxiproxy.local missing" in result.stderr  # k8s-hosts-controller wait's own line
    assert "chart-gw.local missing" not in result.stderr
    assert "ERROR: chart-gw.local / toxiproxy.local not reachable by name" in result.stderr
    assert "got " not in result.stdout  # the URLs are exported only once the names work


def test_the_names_are_settings(tmp_path: Path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    result = resilience_urls(hosts, HOSTS_SYNC_GATEWAY_HOST="gw.test", HOSTS_SYNC_TOXIPROXY_HOST="toxi.test")
    assert result.returncode == 1, result
    assert "gw.test missing" in result.stderr and "toxi.test missing" in result.stderr
    assert "ERROR: gw.test / toxi.test not reachable by name" in result.stderr


@pytest.mark.parametrize("timeout", ["1h30m", "1h"])
def test_the_scripts_timeout_syntax_is_the_controllers(tmp_path: Path, timeout: str):
    """HOSTS_SYNC_TIMEOUT goes straight to `k8s-hosts-controller wait --timeout`: every form the script's help
    allows is taken, so the wait runs on (names missing) instead of failing at once as "not reachable"."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    if CONTROLLER is None:
        pytest.fail("k8s-hosts-controller not found: pip install -e .", pytrace=False)
    script = f'set -euo pipefail; source "{DROP_IN}"; hostsSyncResilienceUrls'
    env = {**os.environ, "HOSTS_SYNC_BIN": str(CONTROLLER), "HOSTS_SYNC_HOSTS_FILE": str(hosts)}
    proc = subprocess.Popen(
        ["bash", "-c", script],
        env={**env, "HOSTS_SYNC_TIMEOUT": timeout},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        _, err = proc.communicate()
        assert "duration" not in err, err
        return
    pytest.fail(f"the wait ended at once (exit {proc.returncode}): {err}")
