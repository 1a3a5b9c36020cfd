"""Process-level safety of the hosts file engine: writers SIGKILLed mid-write, and concurrent writers.

Children are forked (not exec'd) so that a few hundred kills stay within seconds; each child only calls the
engine and leaves with os._exit, never returning into pytest.
"""

from __future__ import annotations

import fcntl
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.engine.block import DEFAULT_MARKER, parse, remove_block, splice
from controller.engine.entries import Entry
from controller.engine.hostsfile import HostsFile

M = DEFAULT_MARKER
KILLS_PER_MODE = 200
# Some user content (with a CRLF line, tabs and non-UTF-8 bytes), ending with a newline.
BASE = b"127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\r\n# caf\xe9 \xff\n" + b"".join(
    b"0.0.0.0 ads%d.example.com\n" % i for i in range(2000)
)


def entry_set(count: int, salt: str) -> list[Entry]:
    return [
        Entry(f"svc-{salt}-{i}.local", f"172.18.{i // 250}.{i % 250 + 1}", f"ns-{salt}/ing-{i}")
        for i in range(count)
    ]


SETS = [[], entry_set(3, "a"), entry_set(400, "b"), entry_set(250, "c"), entry_set(1, "d")]


def fork(work: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    return pid


def writer_loop(path: Path, mode: str, seed: int) -> Callable[[], None]:
    def work() -> None:
        rnd = random.Random(seed)
        hosts = HostsFile(path, mode=mode)
        while True:
            hosts.sync(rnd.choice(SETS))

    return work


@pytest.mark.parametrize("mode", ["rename", "inplace"])
def test_sigkill_at_random_points(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(BASE)
    complete = {BASE} | {splice(BASE, entries, M) for entries in SETS}
    rnd = random.Random(1234)
    partial = 0
    deadline = time.monotonic() + 40
    for kill in range(KILLS_PER_MODE):
        assert time.monotonic() < deadline, f"too slow: {kill} kills"
        pid = fork(writer_loop(path, mode, seed=kill))
        time.sleep(rnd.uniform(0, 0.02))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), "the writer died on its own (an exception in the engine?)"

        content = path.read_bytes()
        if mode == "rename":
            assert content in complete, f"kill {kill}: rename mode left a file that is neither old nor new"
        else:
            partial += content not in complete
            # User content is intact whatever the state of the block ...
            assert remove_block(content, M) == BASE, f"kill {kill}: user content damaged"
            assert parse(content, M).outside_names == parse(BASE, M).outside_names
        # ... and the next write repairs the block exactly.
        entries = rnd.choice(SETS)
        HostsFile(path, mode=mode).sync(entries)
        assert path.read_bytes() == splice(BASE, entries, M)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts"], "temp files left behind"
    print(f"{mode}: {KILLS_PER_MODE} kills, {partial} left a partial block that the next sync repaired")


def locked_read(path: Path) -> bytes:
    """Read under the engine's lock protocol (flock on the file itself, re-checked against the path)."""
    while True:
        with open(path, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                return handle.read()


def hammer(path: Path, mode: str, entries: list[Entry], rounds: int, log: Path) -> Callable[[], None]:
    def work() -> None:
        hosts = HostsFile(path, mode=mode)
        with open(log, "w") as out:
            for _ in range(rounds):
                started = time.monotonic_ns()
                hosts.sync(entries)
                out.write(f"{started} {time.monotonic_ns()}\n")

    return work


@pytest.mark.parametrize("modes", [("rename", "rename"), ("inplace", "inplace"), ("rename", "inplace")])
def test_two_writers_hammering_the_same_file(tmp_path: Path, modes: tuple[str, str]) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(BASE)
    sets = [entry_set(300, "x"), entry_set(20, "y")]
    expected = [splice(BASE, s, M) for s in sets]
    logs = [tmp_path / f"log{i}" for i in range(2)]
    pids = [fork(hammer(path, mode, s, 150, log)) for mode, s, log in zip(modes, sets, logs, strict=True)]

    seen = 0
    running = set(pids)
    while running:
        assert locked_read(path) in {BASE, *expected}, "a reader under the lock saw a mixed file"
        seen += 1
        for pid in list(running):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                running.discard(pid)
                assert os.waitstatus_to_exitcode(status) == 0, "a writer failed"

    final = path.read_bytes()
    assert final in expected and remove_block(final, M) == BASE
    last = [tuple(map(int, log.read_text().split()[-2:])) for log in logs]
    assert all(len(log.read_text().splitlines()) == 150 for log in logs), "a writer failed"
    (a_start, a_end), (b_start, b_end) = last
    if a_end < b_start:  # the final syncs did not overlap: the later one must have won
        assert final == expected[1]
    elif b_end < a_start:
        assert final == expected[0]
    assert seen > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts", "log0", "log1"]


class PausingBeforeReadBack(HostsFile):
    """Rename mode; after its rename and before its read-back, lets a second writer try to sync."""

    def __init__(self, path: Path, other: HostsFile, other_entries: list[Entry]) -> None:
        super().__init__(path, mode="rename")
        self.other, self.other_entries = other, other_entries
        self.other_done = threading.Event()

    def _verify_path(self, target: str, new: bytes) -> None:
        threading.Thread(target=self._other_sync, daemon=True).start()
        self.other_done.wait(0.5)  # the other writer gets every chance to replace the file right now
        super()._verify_path(target, new)

    def _other_sync(self) -> None:
        self.other.sync(self.other_entries)
        self.other_done.set()


def test_a_second_writer_waits_for_the_first_ones_read_back(tmp_path: Path) -> None:
    # Our lock is on the old inode; the file we rename into place must be locked before it is published, or
    # another writer replaces it between our rename and our read-back, and our sync fails (seen under load).
    path = tmp_path / "hosts"
    path.write_bytes(BASE)
    mine, theirs = entry_set(5, "a"), entry_set(7, "b")
    first = PausingBeforeReadBack(path, HostsFile(path, mode="rename"), theirs)
    assert first.sync(mine).changed  # raised "read-back after rename did not match" before the fix
    assert first.other_done.wait(10), "the second writer never got the lock"
    assert path.read_bytes() == splice(BASE, theirs, M)
