"""Bad command lines found by trying to break the controller: each is one line, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import parse_args
from controller.config import ENV_PREFIX, env_name
from tests.unit.test_cli import USER_LINES, assert_usage_error, clean_env, restore_logging  # noqa: F401

NON_FINITE = ["nan", "inf", "-inf", "NaN", "Infinity"]
SECONDS_FLAGS = [
    "--sync-delay",
    "--sync-max-delay",
    "--resync-interval",
    "--resolve-timeout",
    "--post-write-timeout",
]


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_bytes(USER_LINES)
    return path


@pytest.mark.parametrize("flag", SECONDS_FLAGS)
@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_seconds_are_refused_on_the_command_line(capsys, hosts, flag, value):
    argv = ["--namespaces", "a", "--hosts-file", str(hosts), f"{flag}={value}"]
    assert_usage_error(capsys, argv, flag, "finite")
    assert hosts.read_bytes() == USER_LINES


@pytest.mark.parametrize("flag", SECONDS_FLAGS)
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_seconds_are_refused_from_the_environment(capsys, monkeypatch, hosts, flag, value):
    monkeypatch.setenv(env_name(flag), value)
    assert_usage_error(capsys, ["--namespaces", "a", "--hosts-file", str(hosts)], flag, "finite")


@pytest.mark.parametrize(
    "namespaces",
    ["a,../../etc", "UPPER", "has space", "a/b", "-leading", "trailing-", "x" * 64, "a_b", "dots.are.bad"],
)
def test_invalid_namespace_names_are_refused(capsys, hosts, namespaces):
    argv = [f"--namespaces={namespaces}", "--hosts-file", str(hosts)]
    line = assert_usage_error(capsys, argv, "--namespaces")
    assert "not a valid namespace name" in line


def test_invalid_namespace_names_from_the_environment(capsys, monkeypatch, hosts):
    monkeypatch.setenv(env_name("--namespaces"), "ok,../../etc")
    assert_usage_error(capsys, ["--hosts-file", str(hosts)], "../../etc", "not a valid namespace name")


def test_valid_namespace_names_are_accepted():
    assert parse_args(["--namespaces", "tyk,tyk-dp-1,a,0abc," + "x" * 63]).namespaces[-1] == "x" * 63


@pytest.mark.parametrize("suffix", [".", "..", " . "])
def test_a_domain_filter_that_is_only_dots_is_refused(capsys, hosts, suffix):
    argv = ["--namespaces", "a", "--hosts-file", str(hosts), "--domain-filter", suffix]
    assert_usage_error(capsys, argv, "--domain-filter")


def test_an_empty_hosts_file_flag_says_so(capsys, hosts):
    line = assert_usage_error(capsys, ["--namespaces", "a", "--hosts-file", ""], "--hosts-file", "empty")
    assert "is a directory" not in line


def test_an_empty_hosts_file_in_the_environment_says_so(capsys, monkeypatch):
    monkeypatch.setenv(env_name("--hosts-file"), "")
    assert_usage_error(capsys, ["--namespaces", "a"], env_name("--hosts-file"), "empty")


def test_port_zero_means_any_free_port():
    config = parse_args(["--namespaces", "a", "--metrics-bind-address", "127.0.0.1:0"])
    assert config.metrics_bind_address == "127.0.0.1:0"


def test_metrics_default_to_loopback():
    assert parse_args(["--namespaces", "a"]).metrics_bind_address == "127.0.0.1:8080"


MALFORMED_KUBECONFIGS = {
    "bad yaml": b"apiVersion: v1\nclusters: [\n  - {name: x\n",
    "binary": bytes(range(256)) * 4,
    "contexts is a number": b"apiVersion: v1\nkind: Config\ncontexts: 5\ncurrent-context: x\n",
    "clusters is a string": b"apiVersion: v1\nkind: Config\nclusters: nope\ncontexts:\n- name: x\n"
    b"  context: {cluster: c, user: u}\ncurrent-context: x\nusers: []\n",
    "a list": b"- 1\n- 2\n",
    "context without fields": b"apiVersion: v1\nkind: Config\ncontexts:\n- 7\ncurrent-context: x\n",
    "empty": b"",
}


@pytest.mark.parametrize("name", list(MALFORMED_KUBECONFIGS))
def test_a_malformed_kubeconfig_is_one_line_via_the_real_cli(tmp_path, hosts, name):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(MALFORMED_KUBECONFIGS[name])
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "KUBECONFIG"}
    argv = ["--namespaces", "a", "--hosts-file", str(hosts), "--kubeconfig", str(kubeconfig)]
    proc = subprocess.run(
        [sys.executable, "-m", "controller", *argv, "--metrics-bind-address", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("k8s-hosts-controller: error: kubeconfig"), proc.stderr
    assert str(kubeconfig) in lines[0]
    assert hosts.read_bytes() == USER_LINES
