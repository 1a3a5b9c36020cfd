"""An empty K8S_HOSTS_CONTROLLER_* variable (a template's unset value) counts as not set, for every setting
but the hosts file's; and a bad value from the environment is reported naming the variable."""

from __future__ import annotations

import pytest

from controller.cli import main, parse_args
from controller.config import env_name, settings

PREFIX = "k8s-hosts-controller: error: "
pytestmark = pytest.mark.usefixtures("no_cluster_env")


EVERY_FLAG_BUT_THE_HOSTS_FILE = [spec.flag for _, spec in settings() if spec.flag != "--hosts-file"]


@pytest.mark.parametrize("flag", EVERY_FLAG_BUT_THE_HOSTS_FILE)
@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_variable_is_the_same_as_none(monkeypatch, flag, empty):
    unset = parse_args(["--namespaces", "a"])
    monkeypatch.setenv(env_name(flag), empty)
    assert parse_args(["--namespaces", "a"]) == unset


def test_empty_namespaces_in_the_environment_leave_the_flag_to_decide(monkeypatch):
    monkeypatch.setenv(env_name("--namespaces"), "")
    monkeypatch.setenv(env_name("--all-namespaces"), "true")
    assert parse_args([]).cluster.all_namespaces


def test_an_empty_metrics_address_keeps_metrics_on(monkeypatch):
    monkeypatch.setenv(env_name("--metrics-bind-address"), "")
    assert parse_args(["--namespaces", "a"]).serve.bind_address == "127.0.0.1:8080"


def test_an_empty_hosts_file_variable_is_still_refused(monkeypatch, capsys):
    monkeypatch.setenv(env_name("--hosts-file"), "")
    assert main(["--namespaces", "a"]) == 2
    assert env_name("--hosts-file") in capsys.readouterr().err


def test_an_unknown_context_from_the_environment_names_the_variable(
    monkeypatch, tmp_path, capsys, unreachable_kubeconfig
):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    monkeypatch.setenv(env_name("--context"), "missing-ctx")
    code = main(
        ["--namespaces", "a", "--hosts-file", str(hosts), "--kubeconfig", str(unreachable_kubeconfig)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith(PREFIX)
    assert env_name("--context") in err and "'missing-ctx'" in err
    code = main(
        [
            "--namespaces",
            "a",
            "--hosts-file",
            str(hosts),
            "--kubeconfig",
            str(unreachable_kubeconfig),
            "--context",
            "x",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "'x' (--context)" in err and env_name("--context") not in err


def test_empty_namespaces_alone_are_reported_as_not_given(monkeypatch, capsys):
    assert main([]) == 2
    unset = capsys.readouterr().err
    monkeypatch.setenv(env_name("--namespaces"), "")
    assert main([]) == 2
    assert capsys.readouterr().err == unset  # "one of --namespaces or --all-namespaces is required"
