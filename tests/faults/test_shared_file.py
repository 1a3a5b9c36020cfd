"""Two controllers on one file (rename mode and in-place mode, same marker) under churn, and another process
editing lines outside the block during churn.

Cooperating readers read under a shared flock (what the controllers' exclusive lock serialises against); an
unlocked reader may see the in-place writer's file half-written, which is counted and printed, not hidden.
"""

from __future__ import annotations

import fcntl
import os
import random
import threading
import time

import pytest

from testkit.filewatch import FileWatcher
from testkit.process import ControllerProcess
from tests.faults.helpers import (
    FULL,
    USER,
    Churn,
    after_cleanup,
    check_file,
    controller_argv,
    locked_read,
    outside_of,
    say,
    wait_converged,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
CHURN_SECONDS = 60.0 if FULL else 6.0


def _checker(path, expected_outside):
    seen = {"versions": 0, "torn_unlocked": 0, "bad": []}

    def check(_now: float, content: bytes) -> None:
        seen["versions"] += 1
        try:
            check_file(content)
            if expected_outside is not None:
                assert outside_of(content) == expected_outside(), "bytes outside the block changed"
            return
        except AssertionError:
            seen["torn_unlocked"] += 1
        try:
            content = locked_read(path)
            check_file(content)
            if expected_outside is not None:
                assert outside_of(content) == expected_outside(), "bytes outside the block changed"
        except AssertionError as err:
            seen["bad"].append(str(err)[:400])

    return seen, check


def test_two_controllers_rename_and_inplace(control_plane, fapi, namespace, user_hosts, tmp_path):
    seen, check = _checker(user_hosts, lambda: USER)
    watcher = FileWatcher(user_hosts, on_content=check)
    churn = Churn(fapi, namespace, seed=21, threads=3, pause=0.02)
    churn.seed_objects(30)
    kube = control_plane.kubeconfig
    a = ControllerProcess(
        controller_argv(kube, user_hosts, namespace, "--write-mode", "rename"), tmp_path / "rename.log"
    ).start()
    b = ControllerProcess(
        controller_argv(kube, user_hosts, namespace, "--write-mode", "inplace"), tmp_path / "inplace.log"
    ).start()
    try:
        wait_converged(fapi, namespace, user_hosts, timeout=60)
        churn.start()
        time.sleep(CHURN_SECONDS)
        churn.stop()
        expected, content = wait_converged(fapi, namespace, user_hosts, timeout=30)
        assert a.alive() and b.alive(), a.tail() + b.tail()
        assert outside_of(content) == USER
        a.stop()
        # the in-place controller's exit removes the block (whether or not its block watch had put it back)
        assert b.stop() == 0
        final = user_hosts.read_bytes()
    finally:
        churn.stop()
        a.kill()
        b.kill()
        watcher.close()
    entries = 0 if expected is None else expected.count(b"\n") - 2
    say(
        f"two controllers (rename + inplace) for {CHURN_SECONDS:.0f} s of churn ({churn.total} API changes); "
        f"{seen['versions']} file versions checked; torn states seen by an unlocked reader: "
        f"{seen['torn_unlocked']}; corrupt under the lock: {len(seen['bad'])}; final block = cluster "
        f"({entries} entries); lost 0"
    )
    assert not seen["bad"], seen["bad"][:3]
    assert final == USER
    assert not churn.errors, churn.errors[:3]


class Editor:
    """Another program editing the user's lines during churn: appends (like `echo >> /etc/hosts`) and
    rewrites of a line (read, change, write back), taking the same exclusive flock as the controller when
    ``lock`` is set. Keeps the expected outside-the-block content."""

    def __init__(self, path, lock: bool, seed: int = 3) -> None:
        self.path, self.lock = path, lock
        self.outside = USER
        self.rng = random.Random(seed)
        self.edits = {"append": 0, "change": 0}
        self.mutex = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            self.edit(n)
            time.sleep(self.rng.uniform(0.02, 0.15))

    def edit(self, n: int) -> None:
        fd = os.open(self.path, os.O_RDWR)
        try:
            if self.lock:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                    return  # replaced while waiting: try again next time
            content = os.read(fd, 1 << 24)
            with self.mutex:
                if self.rng.random() < 0.5:
                    line = f"10.77.{n // 250}.{n % 250 + 1} user-{n}.home\n".encode()
                    # append after the last byte, like >>; our block stays where it is
                    os.lseek(fd, 0, os.SEEK_END)
                    os.write(fd, line)
                    self.outside = self.outside + line
                    self.edits["append"] += 1
                else:
                    old = b"192.168.1.10 nas.home  # my NAS"
                    cur = next((x for x in self.outside.split(b"\n") if x.startswith(b"192.168.1.10")), old)
                    new = f"192.168.1.10 nas.home  # my NAS, edit {n}".encode()
                    if cur not in content:
                        self.edits["found_lost"] = self.edits.get("found_lost", 0) + 1
                        return
                    updated = content.replace(cur, new, 1)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, updated)
                    os.ftruncate(fd, len(updated))
                    self.outside = self.outside.replace(cur, new, 1)
                    self.edits["change"] += 1
        finally:
            os.close(fd)


@pytest.mark.parametrize("lock", [True, False], ids=["editor-takes-flock", "editor-without-lock"])
def test_edits_outside_the_block_survive_churn(control_plane, fapi, namespace, user_hosts, tmp_path, lock):
    editor = Editor(user_hosts, lock=lock)
    churn = Churn(fapi, namespace, seed=31, threads=3, pause=0.02)
    churn.seed_objects(30)
    argv = controller_argv(control_plane.kubeconfig, user_hosts, namespace, "--resync-interval", "1")
    proc = ControllerProcess(argv, tmp_path / "controller.log").start()
    try:
        wait_converged(fapi, namespace, user_hosts, timeout=60)
        churn.start()
        editor.thread.start()
        time.sleep(CHURN_SECONDS)
        editor.stop.set()
        editor.thread.join(10)
        churn.stop()
        _, content = wait_converged(fapi, namespace, user_hosts, timeout=30)
        got_outside = outside_of(content)
        assert proc.stop() == 0
        final = user_hosts.read_bytes()
    finally:
        churn.stop()
        editor.stop.set()
        proc.kill()
    want = editor.outside.split(b"\n")
    got = got_outside.split(b"\n")
    lost = [x for x in want if x not in got]
    say(
        f"editor {'with' if lock else 'without'} flock: {editor.edits} edits outside the block during "
        f"{CHURN_SECONDS:.0f} s of churn ({churn.total} API changes); lines lost {len(lost)}, "
        f"final outside bytes equal: {got_outside == editor.outside}"
    )
    if not lock and lost:
        pytest.xfail(
            f"an editor that takes no lock lost {len(lost)} line(s) (e.g. {lost[:2]}): a write between the "
            "controller's read and its rename goes to the replaced inode (see docs/reliability.md)"
        )
    assert got_outside == editor.outside
    assert final == after_cleanup(content)
