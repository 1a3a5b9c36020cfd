"""A huge or sparse hosts file is refused with one line, everywhere it is read, and never loaded.

The engine on real sparse files (a 1 TiB `truncate -s 1T` file takes no disk), the writer (not ready, the
reason on /readyz, write_failing 1) and the real command line (--cleanup, wait, the flag's syntax).
"""

from __future__ import annotations

import asyncio
import io
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import controller.engine.hostsfile as hostsfile_module
from controller.engine.block import DEFAULT_MARKER, splice
from controller.engine.entries import Entry
from controller.engine.errors import HostsFileTooLarge
from controller.engine.hostsfile import DEFAULT_MAX_SIZE, HostsFile
from controller.engine.sizes import format_size, parse_size, size_flag
from controller.serve.health import Reason
from controller.sync.dryrun import print_dry_run
from controller.sync.plan import Plan
from tests.unit.sync.test_writer import list_scope, make_rig, snap, until

M = DEFAULT_MARKER
TIB = 1 << 40
USER = b"127.0.0.1 localhost\n"
E = [Entry("chart-dash.local", "172.18.0.200", "tyk/dashboard-ingress")]
# A child process whose address space is far below the sparse file: loading it would fail, not swap.
MEMORY_LIMIT = 512 << 20


def sparse(path: Path, size: int) -> Path:
    path.write_bytes(USER)
    os.truncate(path, size)
    return path


def one_line(err: pytest.ExceptionInfo[HostsFileTooLarge], path: Path, size: int) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    assert str(path) in text and f"{size} bytes" in text, text  # the size
    assert "above the bound of 64 MiB" in text and "--max-hosts-file-size" in text, text  # bound, flag
    return text


@pytest.mark.parametrize(
    "call",
    [
        lambda h: h.read(),
        lambda h: h.parse(),
        lambda h: h.preview(E),
        lambda h: h.sync(E),
        lambda h: h.sync([]),
        lambda h: h.cleanup(),
        lambda h: print_dry_run(h, Plan(tuple(E), (), (), 1), io.StringIO()),
    ],
    ids=["read", "parse", "preview", "sync", "sync-empty", "cleanup", "dry-run"],
)
@pytest.mark.parametrize("mode", ["rename", "inplace"])
def test_a_sparse_terabyte_file_is_refused_by_every_reader(tmp_path: Path, call, mode: str) -> None:
    path = sparse(tmp_path / "hosts", TIB)
    before = os.stat(path)
    with pytest.raises(HostsFileTooLarge) as err:
        call(HostsFile(path, mode=mode))
    one_line(err, path, TIB)
    after = os.stat(path)
    assert (after.st_size, after.st_ino, after.st_mtime_ns) == (
        before.st_size,
        before.st_ino,
        before.st_mtime_ns,
    )


def test_the_bound_is_the_files_size_and_a_raised_bound_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(splice(USER, E, M) + b"#" * 4000 + b"\n")
    size = path.stat().st_size
    with pytest.raises(HostsFileTooLarge):
        HostsFile(path, max_size=size - 1).parse()
    assert HostsFile(path, max_size=size).parse().managed == tuple(E)
    # What we would write must be readable again: a sync that would cross the bound is refused, unwritten.
    original = path.read_bytes()
    many = [Entry(f"svc-{i}.local", "172.18.0.9", f"ns/i{i}") for i in range(50)]
    with pytest.raises(HostsFileTooLarge, match="with the new block would be"):
        HostsFile(path, max_size=size + 100).sync(many)
    assert path.read_bytes() == original


def test_a_file_that_grows_while_it_is_read_is_read_only_to_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(USER * 1000)  # 20,000 bytes, but fstat says 20 (it grew after the check)
    real_fstat = os.fstat
    reads: list[int] = []
    real_pread = os.pread

    def small_fstat(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        return os.stat_result((*st[:6], len(USER), *st[7:]))

    def counting_pread(fd: int, n: int, offset: int) -> bytes:
        data = real_pread(fd, n, offset)
        reads.append(len(data))
        return data

    monkeypatch.setattr(hostsfile_module.os, "fstat", small_fstat)
    monkeypatch.setattr(hostsfile_module.os, "pread", counting_pread)
    with pytest.raises(HostsFileTooLarge):
        HostsFile(path, max_size=1024).read()
    assert sum(reads) == 1024 + 1  # the bound and one byte, never the whole file


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64Mi", 64 << 20),
        ("128MiB", 128 << 20),
        ("1048576", 1 << 20),
        ("2gi", 2 << 30),
        ("512 KiB", 512 << 10),
    ],
)
def test_sizes_people_write(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["64MB", "64M", "1.5Gi", "-1", "", "lots", "64Mo", "1e9"])
def test_sizes_that_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="Mi"):
        parse_size(text)


def test_sizes_are_shown_in_the_flags_syntax_and_in_messages() -> None:
    assert size_flag(DEFAULT_MAX_SIZE) == "64Mi" and size_flag(1536) == "1536" and size_flag(3 << 30) == "3Gi"
    assert format_size(TIB) == "1 TiB" and format_size(1536) == "1.5 KiB" and format_size(10) == "10 bytes"


def test_the_writer_says_not_ready_with_the_reason(tmp_path: Path) -> None:
    path = sparse(tmp_path / "hosts", TIB)
    rig = make_rig(path)

    async def scenario() -> None:
        list_scope(rig.state, "ns", snap("app"))
        await until(lambda: rig.health.blocked_by(Reason.WRITE))
        assert rig.value("write_failing") == 1
        assert not rig.health.ready
        reason = rig.health.message(Reason.WRITE)
        assert "above the bound of 64 MiB" in reason and "--max-hosts-file-size" in reason, reason
        assert rig.count("error") >= 1
        os.truncate(path, len(USER))  # the file is back to normal: the next retry writes it
        await until(lambda: rig.health.ready, timeout=10)
        assert rig.value("write_failing") == 0 and not rig.health.blocked_by(Reason.WRITE)

    drive_with_task(rig, scenario)
    assert b"app.local" in path.read_bytes()


def drive_with_task(rig, scenario) -> None:
    """The writer as a task; it must still run when the scenario ends (a MemoryError would have ended it)."""

    async def main() -> None:
        task = asyncio.create_task(rig.writer.run())
        try:
            await scenario()
            assert not task.done(), task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


def run_limited(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, in an address space far smaller than the file."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.parametrize(
    "argv",
    [["--cleanup"], ["wait", "--host", "chart-dash.local", "--timeout", "5s"]],
    ids=["cleanup", "wait"],
)
@pytest.mark.parametrize("size", [1 << 30, TIB], ids=["1GiB", "1TiB"])
def test_the_command_line_refuses_a_huge_file_in_one_line(tmp_path: Path, argv: list[str], size: int) -> None:
    path = sparse(tmp_path / "hosts", size)
    args = (
        [*argv[:1], *argv[1:], "--hosts-file", str(path)]
        if argv[0] == "wait"
        else [*argv, "--hosts-file", str(path)]
    )
    proc = run_limited(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"is {size} bytes" in lines[0] and "above the bound of 64 MiB" in lines[0], lines[0]
    assert "--max-hosts-file-size" in lines[0]
    assert os.stat(path).st_size == size


def test_the_flag_and_its_variable_raise_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(splice(USER + b"#" * (2 << 20) + b"\n", E, M))  # about 2 MiB
    assert run_limited("--cleanup", "--hosts-file", str(path), "--max-hosts-file-size", "1Mi").returncode == 2
    proc = run_limited(
        "--cleanup", "--hosts-file", str(path), env={"K8S_HOSTS_CONTROLLER_MAX_HOSTS_FILE_SIZE": "3Mi"}
    )
    assert proc.returncode == 0, proc.stderr
    assert path.read_bytes() == USER + b"#" * (2 << 20) + b"\n"


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--max-hosts-file-size", "64MB"], {}, ["--max-hosts-file-size", "ambiguous", "64Mi"]),
        (["--max-hosts-file-size", "huge"], {}, ["--max-hosts-file-size", "not a size"]),
        (["--max-hosts-file-size", "1"], {}, ["--max-hosts-file-size", "out of range", "1Ki to 4Gi"]),
        (
            [],
            {"K8S_HOSTS_CONTROLLER_MAX_HOSTS_FILE_SIZE": "5Ti"},
            ["K8S_HOSTS_CONTROLLER_MAX_HOSTS_FILE_SIZE"],
        ),
        (["wait", "--host", "a.local", "--max-hosts-file-size", "0"], {}, ["wait", "out of range"]),
    ],
)
def test_a_bad_size_is_a_usage_error(
    tmp_path: Path, args: list[str], env: dict[str, str], words: list[str]
) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(USER)
    proc = run_limited(
        *args, "--hosts-file", str(path), *([] if args[:1] == ["wait"] else ["--cleanup"]), env=env
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), proc.stderr
    assert path.read_bytes() == USER
