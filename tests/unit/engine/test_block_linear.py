"""Parsing is linear in the file size: 50 MB hosts files shaped to make a parser backtrack or rescan.

Each shape is parsed in a child process (the engine's functions, then the real `--cleanup` and `wait` for the
shapes the issue found) that must finish within a generous bound: before the fix, a BEGIN line followed by a
long line of blanks kept `--cleanup` and `wait` busy for minutes (regex backtracking), and a long line of
repeated marker text was rescanned once per repetition.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.engine.block import DEFAULT_MARKER, begin_line, end_line

BOUND_SECONDS = 10.0  # the "within a few seconds", generous for a loaded machine
SIZE = 50_000_000
BEGIN = begin_line(DEFAULT_MARKER).encode()
END = end_line(DEFAULT_MARKER).encode()
BASE = b"127.0.0.1 localhost\n10.1.1.1 mine.local\n"


def repeat(unit: bytes) -> bytes:
    return unit * (SIZE // len(unit))


SHAPES = {
    "blanks after an unterminated BEGIN": lambda: BASE + BEGIN + b"\n" + repeat(b" "),
    "an address, blanks, a stray byte": lambda: BASE + BEGIN + b"\n1" + repeat(b" ") + b"!",
    "an entry with long mixed blanks": lambda: BASE + BEGIN + b"\n10.0.0.1 a.local" + repeat(b" \t") + b"#",
    "one line of repeated BEGIN text": lambda: BASE + repeat(BEGIN + b" ") + b"\n",
    "repeated END text after a BEGIN": lambda: BASE + BEGIN + b"\n" + repeat(END + b"x"),
    "lines that almost are markers": lambda: BASE + repeat(b"\v" + BEGIN + b"\f\n"),
    "lookalike lines after a BEGIN": lambda: BASE + BEGIN + b"\n" + repeat(b"10.0.0.1 a.local # n/a\n"),
    "an address without a name": lambda: BASE + repeat(b"1."),
    "blanks before an address": lambda: BASE + repeat(b" \t") + b"1.1\n",
}
CLI_SHAPES = ("blanks after an unterminated BEGIN", "one line of repeated BEGIN text")

ENGINE = """
import sys
from controller.engine.block import DEFAULT_MARKER as M, block_names, parse, remove_block, splice
from controller.engine.entries import Entry
content = open(sys.argv[1], "rb").read()
parse(content, M)
block_names(content, M)
remove_block(content, M)
splice(content, [Entry("x.local", "10.0.0.9", "ns/x")], M)
"""


def run_bounded(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("K8S_HOSTS_CONTROLLER_")}
    started = time.monotonic()
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, timeout=BOUND_SECONDS, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: still busy after {BOUND_SECONDS:g} s on a {SIZE // 10**6} MB file (not linear)")
    print(f"{what}: {time.monotonic() - started:.2f} s")
    return proc


@pytest.mark.parametrize("shape", SHAPES)
def test_a_50_mb_adversarial_file_is_parsed_within_a_few_seconds(tmp_path: Path, shape: str) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(SHAPES[shape]())
    proc = run_bounded([sys.executable, "-c", ENGINE, str(path)], f"engine, {shape}")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("shape", CLI_SHAPES)
def test_cleanup_and_wait_on_a_50_mb_adversarial_file(tmp_path: Path, shape: str) -> None:
    path = tmp_path / "hosts"
    content = SHAPES[shape]()
    path.write_bytes(content)
    wait = [sys.executable, "-m", "controller", "wait", "--hosts-file", str(path), "--host", "x.local"]
    # 3 s: time to read and parse the file once (a check still running at the deadline is abandoned, so a
    # shorter timeout would say "not read by the deadline" instead of naming the missing host)
    proc = run_bounded([*wait, "--timeout", "3s"], f"wait, {shape}")
    assert proc.returncode == 1 and "x.local missing" in proc.stderr, proc.stderr
    cleanup = [sys.executable, "-m", "controller", "--cleanup", "--hosts-file", str(path)]
    proc = run_bounded(cleanup, f"--cleanup, {shape}")
    assert proc.returncode == 0, proc.stderr
    after = path.read_bytes()
    assert after.startswith(BASE) and len(after) <= len(content)
