"""Bad command lines found by trying to break the controller: each is one line, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import parse_args
from controller.config import ENV_PREFIX, env_name, settings
from tests.unit.test_cli import (  # noqa: F401
    USER_LINES,
    assert_usage_error,
    restore_logging,
)

pytestmark = pytest.mark.usefixtures("no_cluster_env")

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


# Each duration's range (README flags table): values just outside it and absurd ones refused, its edges kept.
OUT_OF_RANGE = {
    "--sync-delay": (["1e308", "60.001", "-1", "3600"], "0 to 60 seconds"),
    "--sync-max-delay": (["1e308", "300.5", "-0.5"], "0 to 300 seconds"),
    "--resync-interval": (["1e-9", "0.5", "86401", "1e308", "-3"], "0 (off) or 1 to 86400 seconds"),
    "--resolve-timeout": (["0", "1e-9", "0.09", "61", "1e308"], "0.1 to 60 seconds"),
    "--post-write-timeout": (["0", "1e-9", "3601", "1e308"], "0.1 to 3600 seconds"),
}
EDGES = {
    "--sync-delay": ["0", "60"],
    "--sync-max-delay": ["0", "300"],
    "--resync-interval": ["0", "1", "86400"],
    "--resolve-timeout": ["0.1", "60"],
    "--post-write-timeout": ["0.1", "3600"],
}


@pytest.mark.parametrize(
    ("flag", "value"), [(flag, value) for flag, (values, _) in OUT_OF_RANGE.items() for value in values]
)
def test_durations_out_of_range_are_refused_on_the_command_line(capsys, hosts, flag, value):
    argv = ["--namespaces", "a", "--hosts-file", str(hosts), f"{flag}={value}"]
    assert_usage_error(capsys, argv, flag, OUT_OF_RANGE[flag][1])
    assert hosts.read_bytes() == USER_LINES


@pytest.mark.parametrize(("flag", "value"), [(flag, values[0]) for flag, (values, _) in OUT_OF_RANGE.items()])
def test_durations_out_of_range_are_refused_from_the_environment(capsys, monkeypatch, hosts, flag, value):
    monkeypatch.setenv(env_name(flag), value)
    argv = ["--namespaces", "a", "--hosts-file", str(hosts)]
    assert_usage_error(capsys, argv, env_name(flag), flag, OUT_OF_RANGE[flag][1])


@pytest.mark.parametrize("flag", list(OUT_OF_RANGE))
def test_a_non_finite_duration_names_the_range_too(capsys, hosts, flag):
    argv = ["--namespaces", "a", "--hosts-file", str(hosts), f"{flag}=nan"]
    assert_usage_error(capsys, argv, flag, "finite", OUT_OF_RANGE[flag][1].removesuffix(" seconds"))


@pytest.mark.parametrize("flag", list(EDGES))
def test_each_duration_range_is_exactly_its_documented_span(capsys, flag):
    """The edges are kept, a step past them is refused: the range is neither narrower nor wider."""
    others = ["--sync-delay", "0"] if flag == "--sync-max-delay" else []  # max delay is at least the delay
    for value in EDGES[flag]:
        config = parse_args(["--namespaces", "a", *others, flag, value])
        path = next(spec.path for _, spec in settings() if spec.flag == flag)
        assert config.get(path) == float(value)
    low, high = float(EDGES[flag][-2]), float(EDGES[flag][-1])
    for value in (low - 0.01, high + 0.01):
        assert_usage_error(capsys, ["--namespaces", "a", *others, flag, str(value)], flag)


def test_every_duration_setting_has_a_range():
    durations = {spec.flag for _, spec in settings() if spec.kind == "seconds"}
    assert durations == set(OUT_OF_RANGE) == set(EDGES)
    assert all(spec.span is not None for _, spec in settings() if spec.kind == "seconds")


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
    assert parse_args(["--namespaces", "tyk,tyk-dp-1,a,0abc," + "x" * 63]).cluster.namespaces[-1] == "x" * 63


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
    assert config.serve.bind_address == "127.0.0.1:0"


def test_metrics_default_to_loopback():
    assert parse_args(["--namespaces", "a"]).serve.bind_address == "127.0.0.1:8080"


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
    unreachable_kubeconfig = tmp_path / "kubeconfig"
    unreachable_kubeconfig.write_bytes(MALFORMED_KUBECONFIGS[name])
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "KUBECONFIG"}
    argv = ["--namespaces", "a", "--hosts-file", str(hosts), "--kubeconfig", str(unreachable_kubeconfig)]
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
    assert str(unreachable_kubeconfig) in lines[0]
    assert hosts.read_bytes() == USER_LINES


# ------------------------------------------------------------------ one line, exit 2, before anything starts
# Each row is a bad command line (and environment) given to the real CLI with a usable kubeconfig, so that a
# value that slips through validation reaches the start-up banner (and then fails late, or runs). Every row
# must end with exit 2, one line naming the problem, no banner, no output and the hosts file untouched.

BANNER = "starting k8s-hosts-controller"
HANG_GUARD = 30  # seconds: a row that passes validation would run the controller; only a hang guard

CONTROLLER_ROWS = {
    # durations: each within its range, refused by the real process before it starts
    "sync delay of 1e308": (["--sync-delay", "1e308"], {}, ["--sync-delay", "0 to 60 seconds", "1e+308"]),
    "resync every nanosecond": (["--resync-interval", "1e-9"], {}, ["--resync-interval", "1 to 86400"]),
    "resync every nanosecond, from the environment": (
        [],
        {"--resync-interval": "1e-9"},
        [env_name("--resync-interval"), "0 (off) or 1 to 86400 seconds"],
    ),
    # --metrics-bind-address: ports are ASCII digits 0-65535, IPv6 in brackets, hosts must resolve
    "port in superscript digits": (["--metrics-bind-address", "127.0.0.1:²"], {}, ["127.0.0.1:²", "port"]),
    "port in Arabic-Indic digits": (["--metrics-bind-address", ":٨٠"], {}, ["port", "ASCII"]),
    "IPv6 without brackets": (["--metrics-bind-address", "::8080"], {}, ["'::8080'", "[::]:8080"]),
    "IPv6 loopback without brackets": (["--metrics-bind-address", "::1:9000"], {}, ["brackets"]),
    "bracketed non-IPv6": (["--metrics-bind-address", "[nope]:8080"], {}, ["IPv6"]),
    "IPv4 out of range": (["--metrics-bind-address", "999.1.1.1:0"], {}, ["999.1.1.1", "IPv4"]),
    "host with spaces": (["--metrics-bind-address", "no such host:0"], {}, ["'no such host'"]),
    "host that does not resolve": (
        ["--metrics-bind-address", "nothing-here.invalid:0"],
        {},
        ["nothing-here.invalid", "does not resolve"],
    ),
    # --domain-filter: a suffix no written name can end in refuses every name
    "wildcard domain filter": (["--domain-filter", "*.test"], {}, ["'*.test'", "wildcard", "test"]),
    "wildcard alone": (["--domain-filter", "*"], {}, ["'*'", "wildcard"]),
    "underscore domain filter": (["--domain-filter", "my_lab.test"], {}, ["'my_lab.test'", "not a domain"]),
    "non-ASCII domain filter": (["--domain-filter", "bücher.test"], {}, ["'bücher.test'", "non-ASCII"]),
    "domain filter with a space": (["--domain-filter", "a b.test"], {}, ["'a b.test'"]),
    "empty domain filter": (["--domain-filter", ""], {}, ["--domain-filter", "empty"]),
    # lists given empty mean nothing, not the default
    "empty source": (["--source", ""], {}, ["--source", "empty", "ingress"]),
    "source of commas": (["--source", ",,"], {}, ["--source", "empty"]),
    "empty ingress class": (["--ingress-class", ""], {}, ["--ingress-class", "empty"]),
    # kubeconfig paths that exist but are not files
    "kubeconfig /dev/null": (["--kubeconfig", "/dev/null"], {}, ["/dev/null", "not a regular file"]),
    "kubeconfig directory": (["--kubeconfig", "{tmp}"], {}, ["{tmp}", "is a directory"]),
    # the environment is checked even where a flag overrides it
    "env source bogus, flag given": (
        ["--source", "ingress"],
        {"--source": "bogus"},
        [env_name("--source"), "bogus"],
    ),
    "env namespaces ../etc, flag given": (
        [],
        {"--namespaces": "../etc"},
        [env_name("--namespaces"), "'../etc'", "not a valid namespace name"],
    ),
    "env namespaces bad, all-namespaces given": (
        ["--all-namespaces"],
        {"--namespaces": "UPPER"},
        [env_name("--namespaces"), "'UPPER'"],
    ),
    "env domain filter wildcard, flag given": (
        ["--domain-filter", "test"],
        {"--domain-filter": "*.test"},
        [env_name("--domain-filter"), "wildcard"],
    ),
    "env marker bad, flag given": (["--marker", "MINE"], {"--marker": "A#B"}, [env_name("--marker"), "'#'"]),
    "env bind address bad, flag given": (
        ["--metrics-bind-address", "0"],
        {"--metrics-bind-address": "::8080"},
        [env_name("--metrics-bind-address"), "brackets"],
    ),
    "env sync delay negative, flag given": (
        ["--sync-delay", "0.5"],
        {"--sync-delay": "-1"},
        [env_name("--sync-delay"), "0 to 60 seconds"],
    ),
    "env resolve timeout zero, flag given": (
        ["--resolve-timeout", "2"],
        {"--resolve-timeout": "0"},
        [env_name("--resolve-timeout"), "0.1 to 60 seconds"],
    ),
    "env post-write timeout nan, flag given": (
        ["--post-write-timeout", "5"],
        {"--post-write-timeout": "nan"},
        [env_name("--post-write-timeout"), "finite"],
    ),
    "env hosts file empty, flag given": (
        [],
        {"--hosts-file": ""},
        [env_name("--hosts-file"), "empty"],
    ),
    "env ingress class of commas, flag given": (
        ["--ingress-class", "nginx"],
        {"--ingress-class": ","},
        [env_name("--ingress-class"), "empty"],
    ),
}


def cli_env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "KUBECONFIG"}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config from the machine
    env.update({env_name(flag): value for flag, value in extra.items()})
    return env


def run_cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [sys.executable, "-m", "controller", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=HANG_GUARD,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"still running after {HANG_GUARD}s: the bad value was accepted") from err


def assert_refused_before_start(proc: subprocess.CompletedProcess, prefix: str, fragments: list[str]) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert BANNER not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(prefix), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert proc.stdout == ""


@pytest.mark.parametrize("row", list(CONTROLLER_ROWS))
def test_bad_values_are_refused_before_anything_starts(tmp_path, hosts, unreachable_kubeconfig, row):
    argv, env_values, fragments = CONTROLLER_ROWS[row]
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    fragments = [f.replace("{tmp}", str(tmp_path)) for f in fragments]
    if "--all-namespaces" not in argv:
        argv = ["--namespaces", "a", *argv]
    if "--kubeconfig" not in argv:
        argv += ["--kubeconfig", str(unreachable_kubeconfig)]
    if "--metrics-bind-address" not in argv:
        argv += ["--metrics-bind-address", "127.0.0.1:0"]
    proc = run_cli([*argv, "--hosts-file", str(hosts)], cli_env(tmp_path, env_values))
    assert_refused_before_start(proc, "k8s-hosts-controller: error: ", fragments)
    assert hosts.read_bytes() == USER_LINES


WAIT_PREFIX = "k8s-hosts-controller wait: error: "
WAIT_ROWS = {
    "not a URL": (["--ready-url", "notaurl"], {}, ["'notaurl'", "http://"]),
    "unclosed IPv6 bracket": (["--ready-url", "http://[::1"], {}, ["'http://[::1'", "IPv6"]),
    "port not a number": (["--ready-url", "http://127.0.0.1:abc/"], {}, ["'http://127.0.0.1:abc/'", "abc"]),
    "port in superscript digits": (["--ready-url", "http://127.0.0.1:²/"], {}, ["²"]),
    "port out of range": (["--ready-url", "http://127.0.0.1:99999/"], {}, ["99999", "range"]),
    "no host": (["--ready-url", "http:///readyz"], {}, ["'http:///readyz'", "host"]),
    "not http": (["--ready-url", "ftp://127.0.0.1/readyz"], {}, ["ftp://", "http://"]),
    "space in the URL": (["--ready-url", "http://a b/readyz"], {}, ["spaces"]),
    "newline in the URL": (["--ready-url", "http://127.0.0.1/\nreadyz"], {}, ["control characters"]),
    "empty hosts file": (["--host", "a.local", "--hosts-file", ""], {}, ["--hosts-file", "empty"]),
    "empty hosts file in the environment": (
        ["--host", "a.local"],
        {"--hosts-file": ""},
        [env_name("--hosts-file"), "empty"],
    ),
    "bad marker in the environment, flag given": (
        ["--host", "a.local", "--marker", "MINE"],
        {"--marker": "A#B"},
        [env_name("--marker"), "'#'"],
    ),
    "timeout of 300 nines": (["--host", "a.local", "--timeout", "9" * 300], {}, ["--timeout", "86400s"]),
    "timeout over a day": (
        ["--host", "a.local", "--timeout", "1441m"],
        {},
        ["--timeout", "longer than a day"],
    ),
    "timeout of a day in ms plus one": (["--host", "a.local", "--timeout", "86400001ms"], {}, ["--timeout"]),
}


@pytest.mark.parametrize("row", list(WAIT_ROWS))
def test_bad_wait_values_are_refused_before_waiting(tmp_path, hosts, row):
    argv, env_values, fragments = WAIT_ROWS[row]
    if "--hosts-file" not in argv and "--hosts-file" not in env_values:
        argv = [*argv, "--hosts-file", str(hosts)]
    if "--timeout" not in argv:
        argv = [*argv, "--timeout", "20s"]  # a value that slips through would wait this long, then exit 1
    proc = run_cli(["wait", *argv], cli_env(tmp_path, env_values))
    assert_refused_before_start(proc, WAIT_PREFIX, fragments)
    assert hosts.read_bytes() == USER_LINES
