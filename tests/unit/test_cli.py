"""The command line: usage errors (exit 2, one line), environment fallbacks, --version, --cleanup."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller import __version__
from controller.cli import main, parse_args
from controller.config import ENV_PREFIX, UsageError, env_name, settings
from controller.engine.entries import Entry
from controller.engine.hostsfile import HostsFile

PREFIX = "k8s-hosts-controller: error: "
USER_LINES = b"127.0.0.1 localhost\n::1 localhost\n# my own\n10.1.1.1 mine.local\n"

pytestmark = pytest.mark.usefixtures("no_cluster_env")


@pytest.fixture(autouse=True)
def restore_logging():
    """main() installs its own root handler; give pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_bytes(USER_LINES)
    return path


def assert_usage_error(capsys, argv: list[str], *fragments: str) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------------ usage errors


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (
            ["--namespaces", "a", "--all-namespaces"],
            ["--namespaces", "--all-namespaces", "mutually exclusive"],
        ),
        ([], ["--namespaces", "--all-namespaces", "required"]),
        (["--namespaces", ""], ["--namespaces", "empty"]),
        (["--namespaces", " , "], ["--namespaces", "empty"]),
        (["--namespaces", ",,,"], ["--namespaces", "empty"]),
        (["--namespaces", "a", "--marker", "BAD#MARKER"], ["--marker", "#"]),
        (["--namespaces", "a", "--marker", ""], ["--marker"]),
        (["--namespaces", "a", "--marker", " PAD "], ["--marker"]),
        (["--namespaces", "a", "--marker", "X" * 201], ["--marker"]),
        (["--namespaces", "a", "--sync-delay", "-1"], ["--sync-delay", "0 to 60 seconds"]),
        (["--namespaces", "a", "--sync-max-delay", "-0.5"], ["--sync-max-delay"]),
        (["--namespaces", "a", "--resync-interval", "-3"], ["--resync-interval"]),
        (["--namespaces", "a", "--resolve-timeout", "0"], ["--resolve-timeout"]),
        (["--namespaces", "a", "--sync-delay", "soon"], ["--sync-delay", "soon"]),
        (["--namespaces", "a", "--metrics-bind-address", "8080"], ["--metrics-bind-address", "8080"]),
        (["--namespaces", "a", "--metrics-bind-address", ":99999"], ["--metrics-bind-address"]),
        (["--namespaces", "a", "--metrics-bind-address", "host:http"], ["--metrics-bind-address"]),
        (["--namespaces", "a", "--once", "--dry-run"], ["--once", "--dry-run"]),
        (["--cleanup", "--once"], ["--cleanup", "--once"]),
        (["--cleanup", "--dry-run"], ["--cleanup", "--dry-run"]),
        (["--namespaces", "a", "--write-mode", "sideways"], ["--write-mode", "sideways"]),
        (["--namespaces", "a", "--log-format", "xml"], ["--log-format", "xml"]),
        (["--namespaces", "a", "--no-such-flag"], ["--no-such-flag"]),
        (["--namespaces"], ["--namespaces"]),
        (["--namespaces", "a", "--source", "ingress,bogus"], ["--source", "bogus"]),
        (["--namespaces", "a", "--post-write-timeout", "0"], ["--post-write-timeout"]),
        (["--cleanup", "--owner-daemonset", "hosts-sync"], ["--owner-daemonset", "NAMESPACE/NAME"]),
        (["--cleanup", "--owner-daemonset", "Hosts/ds"], ["--owner-daemonset", "'Hosts/ds'"]),
        (["--cleanup", "--owner-daemonset", "ns/ds/x"], ["--owner-daemonset", "NAMESPACE/NAME"]),
        (["--cleanup", "--owner-daemonset", "ns/"], ["--owner-daemonset", "NAMESPACE/NAME"]),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, hosts, argv, fragments):
    assert_usage_error(capsys, [*argv, "--hosts-file", str(hosts)], *fragments)
    assert hosts.read_bytes() == USER_LINES


def test_unknown_context_in_a_real_kubeconfig(capsys, hosts, unreachable_kubeconfig):
    line = assert_usage_error(
        capsys,
        [
            "--namespaces",
            "a",
            "--hosts-file",
            str(hosts),
            "--kubeconfig",
            str(unreachable_kubeconfig),
            "--context",
            "nope",
        ],
        "'nope'",
        str(unreachable_kubeconfig),
    )
    assert "kind-test" in line and "other" in line  # names the available contexts
    assert hosts.read_bytes() == USER_LINES


def test_unknown_context_from_env_and_kubeconfig_from_KUBECONFIG(
    capsys, monkeypatch, hosts, unreachable_kubeconfig
):
    monkeypatch.setenv("KUBECONFIG", str(unreachable_kubeconfig))
    monkeypatch.setenv(env_name("--context"), "missing-ctx")
    assert_usage_error(capsys, ["--namespaces", "a", "--hosts-file", str(hosts)], "'missing-ctx'")


def test_missing_kubeconfig_path(capsys, hosts, tmp_path):
    missing = tmp_path / "no-such-kubeconfig"
    assert_usage_error(
        capsys,
        ["--namespaces", "a", "--hosts-file", str(hosts), "--kubeconfig", str(missing)],
        str(missing),
        "does not exist",
    )


def test_no_kubeconfig_anywhere(capsys, hosts):
    assert_usage_error(capsys, ["--namespaces", "a", "--hosts-file", str(hosts)], "kubeconfig")


def test_kubeconfig_that_is_not_a_kubeconfig(capsys, hosts, tmp_path):
    bad = tmp_path / "kubeconfig"
    bad.write_text("just: [a, list]\n")
    assert_usage_error(
        capsys, ["--namespaces", "a", "--hosts-file", str(hosts), "--kubeconfig", str(bad)], str(bad)
    )


def test_hosts_file_under_a_missing_directory(capsys, tmp_path, unreachable_kubeconfig):
    path = tmp_path / "no-such-dir" / "hosts"
    assert_usage_error(
        capsys,
        ["--namespaces", "a", "--hosts-file", str(path), "--kubeconfig", str(unreachable_kubeconfig)],
        str(path),
    )
    assert not path.parent.exists()


def test_hosts_file_that_is_a_directory(capsys, tmp_path, unreachable_kubeconfig):
    directory = tmp_path / "hosts.d"
    directory.mkdir()
    assert_usage_error(
        capsys,
        ["--namespaces", "a", "--hosts-file", str(directory), "--kubeconfig", str(unreachable_kubeconfig)],
        str(directory),
    )
    assert list(directory.iterdir()) == []


def test_usage_error_via_a_real_subprocess(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "KUBECONFIG"}
    proc = subprocess.run(
        [sys.executable, "-m", "controller", "--namespaces", "a", "--all-namespaces"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), proc.stderr
    assert "mutually exclusive" in lines[0]


def test_unwritable_hosts_file_via_a_real_subprocess(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "KUBECONFIG"}
    env[env_name("--hosts-file")] = str(tmp_path / "missing" / "hosts")
    proc = subprocess.run(
        [sys.executable, "-m", "controller", "--all-namespaces"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), proc.stderr
    assert str(tmp_path / "missing" / "hosts") in lines[0]


# ---------------------------------------------------------------------------------------- env fallbacks


def test_defaults():
    c = parse_args(["--namespaces", "tyk"])
    assert c.cluster.namespaces == ("tyk",)
    assert (
        not c.cluster.all_namespaces
        and not c.mode.cleanup
        and not c.mode.once
        and not c.mode.dry_run
        and not c.log.verbose
    )
    assert c.file.path == Path("/etc/hosts")
    assert c.file.marker == "TYK-K8S-HOSTS"
    assert c.serve.bind_address == "127.0.0.1:8080"
    assert c.mode.cleanup_on_exit is True
    assert (c.sync.delay, c.sync.max_delay, c.resolve.timeout) == (0.1, 1.0, 2.0)
    assert c.sync.domain_filters == () and c.sync.ingress_classes == ()
    assert c.file.write_mode == "auto" and c.log.format == "text"
    assert c.cluster.kubeconfig is None and c.cluster.context is None
    assert c.cluster.sources == ("ingress",)
    assert c.postwrite.command is None


def test_namespaces_comma_list_is_split_trimmed_and_deduplicated():
    c = parse_args(["--namespaces", " tyk , tyk-dp-1,,tyk "])
    assert c.cluster.namespaces == ("tyk", "tyk-dp-1")
    assert c.cluster.scope == "tyk,tyk-dp-1"


def test_repeatable_and_comma_list_filters():
    c = parse_args(
        [
            "--all-namespaces",
            "--domain-filter",
            "local,test",
            "--domain-filter",
            "example",
            "--ingress-class",
            "nginx",
        ]
    )
    assert c.sync.domain_filters == ("local", "test", "example")
    assert c.sync.ingress_classes == ("nginx",)
    assert c.cluster.scope == "all namespaces"


def test_sync_max_delay_is_at_least_sync_delay():
    c = parse_args(["--all-namespaces", "--sync-delay", "2", "--sync-max-delay", "0.5"])
    assert c.sync.max_delay == 2.0


def test_env_fallbacks(monkeypatch, tmp_path):
    values = {
        "--namespaces": "tyk,tyk-dp-1",
        "--hosts-file": str(tmp_path / "h"),
        "--marker": "ENV-MARKER",
        "--kubeconfig": "/k/config",
        "--context": "ctx",
        "--metrics-bind-address": "127.0.0.1:9100",
        "--sync-delay": "0.25",
        "--sync-max-delay": "3",
        "--resync-interval": "0",
        "--resolve-timeout": "5",
        "--domain-filter": "local,test",
        "--ingress-class": "nginx",
        "--write-mode": "inplace",
        "--log-format": "json",
        "--source": "ingress,gateway-httproute",
        "--post-write-command": "true",
        "--post-write-timeout": "3",
    }
    for flag, value in values.items():
        monkeypatch.setenv(env_name(flag), value)
    c = parse_args([])
    assert c.cluster.namespaces == ("tyk", "tyk-dp-1")
    assert c.file.path == tmp_path / "h"
    assert c.file.marker == "ENV-MARKER"
    assert (c.cluster.kubeconfig, c.cluster.context) == ("/k/config", "ctx")
    assert c.serve.bind_address == "127.0.0.1:9100"
    assert (c.sync.delay, c.sync.max_delay, c.sync.resync_interval, c.resolve.timeout) == (
        0.25,
        3.0,
        0.0,
        5.0,
    )
    assert c.sync.domain_filters == ("local", "test")
    assert c.sync.ingress_classes == ("nginx",)
    assert (c.file.write_mode, c.log.format) == ("inplace", "json")
    assert c.cluster.sources == ("ingress", "gateway-httproute")
    assert (c.postwrite.command, c.postwrite.timeout) == ("true", 3.0)


def test_env_name():
    assert env_name("--metrics-bind-address") == "K8S_HOSTS_CONTROLLER_METRICS_BIND_ADDRESS"
    assert env_name("--no-cleanup-on-exit") == "K8S_HOSTS_CONTROLLER_NO_CLEANUP_ON_EXIT"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[("true", True), ("1", True), ("yes", True), ("TRUE", True), (" on ", True)],
        *[("false", False), ("0", False), ("no", False), ("", False), ("False", False)],
    ],
)
def test_env_booleans(monkeypatch, raw, expected):
    monkeypatch.setenv(env_name("--namespaces"), "a")
    for flag in ("--verbose", "--no-cleanup-on-exit", "--dry-run"):
        monkeypatch.setenv(env_name(flag), raw)
    c = parse_args([])
    assert c.log.verbose is expected
    assert c.mode.cleanup_on_exit is (not expected)
    assert c.mode.dry_run is expected


def test_env_all_namespaces_and_cleanup(monkeypatch):
    monkeypatch.setenv(env_name("--all-namespaces"), "yes")
    c = parse_args([])
    assert c.cluster.all_namespaces and c.cluster.namespaces == ()
    monkeypatch.delenv(env_name("--all-namespaces"))
    monkeypatch.setenv(env_name("--cleanup"), "1")
    assert parse_args([]).mode.cleanup  # no namespaces needed for --cleanup


@pytest.mark.parametrize("flag", ["--verbose", "--once", "--all-namespaces", "--cleanup"])
def test_bad_env_boolean_is_a_usage_error(capsys, monkeypatch, hosts, flag):
    monkeypatch.setenv(env_name(flag), "maybe")
    line = assert_usage_error(
        capsys, ["--namespaces", "a", "--hosts-file", str(hosts)], env_name(flag), "'maybe'"
    )
    assert "true or false" in line


def test_bad_env_bind_address_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setenv(env_name("--metrics-bind-address"), "nowhere")
    assert_usage_error(capsys, ["--namespaces", "a"], "--metrics-bind-address", "nowhere")


@pytest.mark.parametrize("flag", ["--sync-delay", "--resolve-timeout", "--post-write-timeout"])
def test_bad_env_number_is_a_usage_error(capsys, monkeypatch, flag):
    monkeypatch.setenv(env_name(flag), "abc")
    assert_usage_error(capsys, ["--namespaces", "a"], env_name(flag))


def test_bad_env_log_format_is_a_usage_error(monkeypatch):
    monkeypatch.setenv(env_name("--log-format"), "xml")
    with pytest.raises(UsageError):
        parse_args(["--namespaces", "a"])


def test_flags_win_over_env(monkeypatch, tmp_path):
    monkeypatch.setenv(env_name("--namespaces"), "from-env")
    monkeypatch.setenv(env_name("--marker"), "ENV")
    monkeypatch.setenv(env_name("--hosts-file"), "/env/hosts")
    monkeypatch.setenv(env_name("--sync-delay"), "9")
    monkeypatch.setenv(env_name("--domain-filter"), "env.example")
    monkeypatch.setenv(env_name("--ingress-class"), "env-class")
    monkeypatch.setenv(env_name("--verbose"), "false")
    monkeypatch.setenv(env_name("--metrics-bind-address"), ":1111")
    c = parse_args(
        [
            "--namespaces",
            "from-flag",
            "--marker",
            "FLAG",
            "--hosts-file",
            str(tmp_path / "h"),
            "--sync-delay",
            "0.5",
            "--domain-filter",
            "flag.local",
            "--ingress-class",
            "flag-class",
            "--verbose",
            "--metrics-bind-address",
            "0",
        ]
    )
    assert c.cluster.namespaces == ("from-flag",)
    assert c.file.marker == "FLAG"
    assert c.file.path == tmp_path / "h"
    assert c.sync.delay == 0.5
    assert c.sync.domain_filters == ("flag.local",)
    assert c.sync.ingress_classes == ("flag-class",)
    assert c.log.verbose is True
    assert c.serve.bind_address == "0"


# --------------------------------------------------------------------------------------------- version


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out, _ = capsys.readouterr()
    assert out.strip() == f"k8s-hosts-controller {__version__}"


def test_version_via_subprocess_needs_no_other_flag():
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    proc = subprocess.run(
        [sys.executable, "-m", "controller", "--version"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"k8s-hosts-controller {__version__}"


def test_help_mentions_env_fallback(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out, _ = capsys.readouterr()
    assert "K8S_HOSTS_CONTROLLER_" in out and "--all-namespaces" in out and "--cleanup" in out


# --------------------------------------------------------------------------------------------- cleanup


def test_cleanup_removes_the_block_and_restores_the_file(capsys, hosts):
    HostsFile(hosts).sync([Entry("app.local", "10.0.0.1", "ns/app"), Entry("gw.local", "fd00::1", "ns/gw")])
    assert b"app.local" in hosts.read_bytes()
    assert main(["--cleanup", "--hosts-file", str(hosts)]) == 0
    assert hosts.read_bytes() == USER_LINES


def test_cleanup_needs_no_namespaces_or_kubeconfig_and_respects_the_marker(hosts, monkeypatch):
    HostsFile(hosts, "OTHER").sync([Entry("other.local", "10.0.0.2", "ns/o")])
    with_other = hosts.read_bytes()
    HostsFile(hosts, "MINE").sync([Entry("mine.local", "10.0.0.3", "ns/m")])
    monkeypatch.setenv(env_name("--marker"), "MINE")
    monkeypatch.setenv(env_name("--kubeconfig"), "/does/not/exist")
    assert main(["--cleanup", "--hosts-file", str(hosts)]) == 0
    assert hosts.read_bytes() == with_other  # the OTHER block is someone else's


def test_cleanup_without_a_block_leaves_the_file_byte_identical(hosts):
    content = b"127.0.0.1 localhost\r\n# crlf, no final newline \xff\xfe"
    hosts.write_bytes(content)
    os.utime(hosts, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = os.stat(hosts)
    assert main(["--cleanup", "--hosts-file", str(hosts)]) == 0
    after = os.stat(hosts)
    assert hosts.read_bytes() == content
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )


def test_cleanup_of_a_missing_file_succeeds_and_creates_nothing(tmp_path):
    path = tmp_path / "hosts"
    assert main(["--cleanup", "--hosts-file", str(path)]) == 0
    assert not path.exists()


def test_cleanup_of_a_directory_is_an_error_not_a_traceback(capsys, tmp_path):
    assert_usage_error(capsys, ["--cleanup", "--hosts-file", str(tmp_path)], str(tmp_path))


def test_the_command_line_namespaces_override_an_environment_all_namespaces(monkeypatch):
    monkeypatch.setenv(env_name("--all-namespaces"), "true")
    config = parse_args(["--namespaces", "tyk"])
    assert config.cluster.namespaces == ("tyk",) and not config.cluster.all_namespaces
    monkeypatch.setenv(env_name("--namespaces"), "from-env")
    config = parse_args(["--all-namespaces"])
    assert config.cluster.all_namespaces and config.cluster.namespaces == ()


def test_help_shows_each_real_default_once_and_never_none(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr()[0].split())  # undo argparse's line wrapping
    assert "default: None" not in out
    for shown in ("/etc/hosts", "TYK-K8S-HOSTS", "auto", "0.1", "127.0.0.1:8080", "ingress", "$KUBECONFIG"):
        assert out.count(f"(default: {shown}") == 1, shown


def test_banner_names_every_setting_with_its_value(tmp_path):
    c = parse_args(["--namespaces", "a,b", "--no-cleanup-on-exit", "--hosts-file", str(tmp_path / "h")])
    described = dict(part.split("=", 1) for part in c.describe().split(", "))
    assert list(described) == [spec.flag.lstrip("-") for _, spec in settings()]
    assert described["namespaces"] == "a,b"
    assert described["no-cleanup-on-exit"] == "true"
    assert described["hosts-file"] == str(tmp_path / "h")
    assert described["kubeconfig"] == "-"


@pytest.mark.parametrize("flag", ["--once", "--dry-run"])
def test_banner_does_not_promise_a_cleanup_that_once_and_dry_run_skip(flag, tmp_path):
    c = parse_args(["--namespaces", "a", flag, "--hosts-file", str(tmp_path / "h")])
    described = dict(part.split("=", 1) for part in c.describe().split(", "))
    assert described["no-cleanup-on-exit"] == f"true (implied by {flag})"


def test_owner_daemonset_from_the_flag_or_the_environment(monkeypatch):
    assert parse_args(["--cleanup"]).cluster.owner_daemonset is None
    assert (
        parse_args(["--cleanup", "--owner-daemonset", "hs/hs-k8s.x"]).cluster.owner_daemonset == "hs/hs-k8s.x"
    )
    monkeypatch.setenv(env_name("--owner-daemonset"), "rel/ds")
    assert parse_args(["--cleanup"]).cluster.owner_daemonset == "rel/ds"
    monkeypatch.setenv(env_name("--owner-daemonset"), "")  # a template's unset value
    assert parse_args(["--cleanup"]).cluster.owner_daemonset is None
    monkeypatch.setenv(env_name("--owner-daemonset"), "no-slash")
    with pytest.raises(UsageError, match="K8S_HOSTS_CONTROLLER_OWNER_DAEMONSET"):
        parse_args(["--cleanup", "--owner-daemonset", "rel/ds"])
