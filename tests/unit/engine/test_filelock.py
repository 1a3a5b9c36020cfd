"""The hosts file's lock held by another process (of another user when run as root): bounded waits that
name the holder, nothing written, and the file works again once the lock goes. Real files, real processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from controller.engine.entries import Entry
from controller.engine.errors import LockTimeout
from controller.engine.hostsfile import HostsFile
from tests.helpers import NOBODY, LockHolder, managed

USER = b"127.0.0.1 localhost\n# a user's line\n"
ENTRY = Entry("app.local", "10.0.0.1", "ns/web")
HANG_GUARD = 60.0  # only turns the old blocking flock (a hang) into a failure


def call_bounded(function):
    """Run ``function`` in a thread; fail (instead of hanging the test run) if it has not returned in time."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as err:  # handed to the test
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_GUARD)
    assert not thread.is_alive(), f"still waiting for the lock after {HANG_GUARD}s (a hang)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_bytes(USER)
    path.chmod(0o644)
    return path


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["rename", "inplace"])
@pytest.mark.parametrize("operation", ["sync", "cleanup"])
def test_a_foreign_lock_holder_makes_the_write_fail_within_the_bound_naming_it(hosts, mode, operation):
    if operation == "cleanup":
        HostsFile(hosts).sync([ENTRY])
    before = hosts.read_bytes()
    engine = HostsFile(hosts, mode=mode)
    engine.lock_timeout = 0.5
    with LockHolder(hosts) as holder:
        started = time.monotonic()
        with pytest.raises(LockTimeout) as caught:
            call_bounded(lambda: engine.sync([ENTRY]) if operation == "sync" else engine.cleanup())
        waited = time.monotonic() - started
        message = str(caught.value)
        assert f"held by pid {holder.pid} 'python" in message, message
        if holder.proc.args[-1] == str(NOBODY):
            assert f"(uid {NOBODY})" in message, message
        assert "more than 0.5s" in message and "nothing was written" in message
        assert waited >= 0.5
        assert hosts.read_bytes() == before  # nothing written without the lock
        holder.release()
        if operation == "sync":
            assert engine.sync([ENTRY]).changed
            assert managed(hosts) == {("app.local", "10.0.0.1")}
        else:
            assert engine.cleanup().changed
            assert hosts.read_bytes() == USER


@pytest.mark.timeout(120)
def test_a_lock_released_within_the_bound_is_taken_and_the_write_goes_through(hosts):
    engine = HostsFile(hosts)
    engine.lock_timeout = 30.0
    with LockHolder(hosts) as holder:
        threading.Timer(0.3, holder.release).start()
        assert call_bounded(lambda: engine.sync([ENTRY])).changed
    assert managed(hosts) == {("app.local", "10.0.0.1")}
