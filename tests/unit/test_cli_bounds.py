"""--max-block-lines and --max-block-bytes: defaults, the environment fallback, and usage errors (exit 2, one
line naming the flag or the variable) for values that are not whole numbers >= 1."""

from __future__ import annotations

import pytest

from controller.cli import main, parse_args
from controller.sync.plan import Bounds


def test_defaults_are_the_planners():
    c = parse_args(["--namespaces", "tyk"])
    assert Bounds(c.sync.max_block_lines, c.sync.max_block_bytes) == Bounds() == Bounds(10_000, 1 << 20)


def test_flags_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("K8S_HOSTS_CONTROLLER_MAX_BLOCK_LINES", "500")
    monkeypatch.setenv("K8S_HOSTS_CONTROLLER_MAX_BLOCK_BYTES", "65_536")
    c = parse_args(["--namespaces", "tyk", "--max-block-lines", "2000"])
    assert (c.sync.max_block_lines, c.sync.max_block_bytes) == (2000, 65_536)


@pytest.mark.parametrize(
    "argv, env, named",
    [
        (["--max-block-lines", "0"], {}, "--max-block-lines must be a whole number >= 1, got '0'"),
        (["--max-block-lines", "-5"], {}, "--max-block-lines must be a whole number >= 1"),
        (["--max-block-bytes", "1e6"], {}, "--max-block-bytes must be a whole number >= 1, got '1e6'"),
        (["--max-block-bytes", "1MiB"], {}, "--max-block-bytes must be a whole number >= 1"),
        (
            ["--max-block-lines", "\u0661\u0660"],
            {},
            "--max-block-lines must be a whole number",
        ),  # Arabic-Indic digits: not ASCII
        # a bad environment value is reported even when the flag overrides it
        (
            ["--max-block-lines", "100"],
            {"K8S_HOSTS_CONTROLLER_MAX_BLOCK_LINES": "lots"},
            "K8S_HOSTS_CONTROLLER_MAX_BLOCK_LINES (--max-block-lines) must be a whole number >= 1",
        ),
    ],
)
def test_bad_values_exit_2_with_one_line(capsys, monkeypatch, tmp_path, argv, env, named):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    assert main(["--namespaces", "tyk", "--hosts-file", str(hosts), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err
