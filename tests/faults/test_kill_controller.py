"""SIGKILL the controller at random moments during heavy churn and restart it each time.

Every version of the file that appears (seen through inotify, and after each kill) must hold exactly one
well-formed block or none, with every byte outside the block intact; after the last restart the block equals
the cluster. Quick: 15 kills; FAULTS_FULL=1: 100.
"""

from __future__ import annotations

import random
import time

import pytest

from testkit.filewatch import FileWatcher
from testkit.process import ControllerProcess
from tests.faults.helpers import (
    FULL,
    USER,
    Churn,
    check_file,
    controller_argv,
    outside_of,
    say,
    wait_converged,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]
KILLS = 100 if FULL else 15


def test_sigkill_during_churn(control_plane, fapi, namespace, user_hosts, tmp_path):
    seen = {"versions": 0, "bad": []}

    def check(_now: float, content: bytes) -> None:
        seen["versions"] += 1
        try:
            check_file(content)
            assert outside_of(content) == USER, "bytes outside the block changed"
        except AssertionError as err:
            seen["bad"].append(str(err)[:500])

    watcher = FileWatcher(user_hosts, on_content=check)
    churn = Churn(fapi, namespace, seed=11, threads=3, pause=0.02)
    churn.seed_objects(40)
    churn.start()
    rng = random.Random(2024)
    argv = controller_argv(control_plane.kubeconfig, user_hosts, namespace)
    kills_with_block = 0
    proc = None
    try:
        for i in range(KILLS):
            proc = ControllerProcess(argv, tmp_path / "controller.log").start()
            # from "still importing" through "initial listing" to "steady syncs under churn"
            time.sleep(rng.uniform(0.2, 2.5))
            assert proc.alive(), proc.tail()
            proc.kill()
            content = user_hosts.read_bytes()
            split = check_file(content)
            assert outside_of(content) == USER, f"kill {i + 1}: bytes outside the block changed"
            kills_with_block += split.block is not None
        churn.stop()
        proc = ControllerProcess(argv, tmp_path / "controller.log").start()
        expected, content = wait_converged(fapi, namespace, user_hosts, timeout=60)
        entries = 0 if expected is None else expected.count(b"\n") - 2
        assert proc.stop() == 0
        after_exit = user_hosts.read_bytes()
    finally:
        churn.stop()
        if proc is not None:
            proc.kill()
        watcher.close()
    say(
        f"SIGKILL x{KILLS} during churn ({churn.total} API changes: {churn.ops}); "
        f"{seen['versions']} file versions checked, {kills_with_block} kills left a block; "
        f"final block = cluster ({entries} entries), lost 0, bytes outside the block changed 0"
    )
    assert not seen["bad"], seen["bad"][:3]
    assert after_exit == USER, "SIGTERM cleanup did not restore the user's file byte for byte"
    assert not churn.errors, churn.errors[:3]
