"""What is said about a sync: summarised refusals (one log line and one Event notice per object and reason),
escaped untrusted values, the change log seeded from the file, and the Event queue that keeps posting off
the write path. On a real temporary hosts file, driven like tests/unit/sync/test_writer.py."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from controller.model import INVALID_HOSTNAME, TOO_MANY_HOSTS
from controller.sync.events import MAX_MESSAGE, EventQueue, Notice
from controller.sync.options import ModeSettings
from controller.sync.plan import MAX_HOSTS_PER_OBJECT
from tests.unit.sync.test_writer import drive, list_scope, make_rig, managed, snap, until

LOGGER = "controller"


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "hosts"
    p.write_bytes(b"127.0.0.1 localhost\n")
    return p


def messages(caplog, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if word in r.getMessage()]


# ---------------------------------------------------------------------------- point 3: one object, many names


def test_a_huge_list_of_names_gives_one_line_and_one_notice_per_reason(path, caplog):
    """5,001 names (a 34 kB hostnames annotation), some invalid: bounded output, whatever the count."""
    names = tuple(f"bad_{i}.local" for i in range(100)) + tuple(f"h{i}.local" for i in range(4901))
    rig = make_rig(path)

    async def scenario():
        list_scope(rig.state, "ns", snap("huge", hosts=names), snap("web", ns="ns", hosts=("web.local",)))
        await until(lambda: rig.health.ready)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        drive(rig, scenario)
    refused = messages(caplog, "refused")
    assert len(refused) == 2, refused  # invalid-hostname and too-many-hosts
    assert all(len(line) < 2000 for line in refused)
    assert sorted(n.reason for n in rig.events.calls) == [INVALID_HOSTNAME, TOO_MANY_HOSTS]
    by_reason = {n.reason: n for n in rig.events.calls}
    assert len(by_reason[TOO_MANY_HOSTS].hosts) == len(names) - MAX_HOSTS_PER_OBJECT
    assert len(by_reason[INVALID_HOSTNAME].hosts) == 100
    for notice in rig.events.calls:
        assert len(notice.message) <= MAX_MESSAGE
        assert "more" in notice.message and f"[{notice.reason}]" in notice.message
    assert ("10.0.0.1", "web.local", "ns/web") in managed(path)
    assert rig.value("rejected_hosts", reason=TOO_MANY_HOSTS) == len(names) - MAX_HOSTS_PER_OBJECT
    assert rig.value("rejections_total", reason=INVALID_HOSTNAME) == 100


def test_a_long_refusal_message_is_cut_in_the_log_and_the_event(path, caplog):
    rig = make_rig(path)
    long_name = "x" * 60_000 + ".local"

    async def scenario():
        list_scope(rig.state, "ns", snap("long", hosts=(long_name,)))
        await until(lambda: rig.health.ready)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        drive(rig, scenario)
    (line,) = messages(caplog, "refused")
    assert len(line) < 1000 and "more characters" in line
    (notice,) = rig.events.calls
    assert len(notice.message) <= MAX_MESSAGE


def test_posting_events_never_holds_a_sync_back(path):
    """An Event API that does not answer: the writer still writes, becomes ready, and keeps syncing."""
    hung = threading.Event()
    posted: list[Notice] = []

    def post(notice: Notice) -> None:
        posted.append(notice)
        hung.wait(10)  # the API server never answers (until the test ends)

    rig = make_rig(path)

    async def scenario():
        queue = EventQueue(post)
        rig.writer.report.post_event = queue.offer
        poster = asyncio.create_task(queue.run())
        try:
            list_scope(rig.state, "ns", snap("bad", hosts=("*.a.local", "a.local")))
            await until(lambda: rig.health.ready and len(posted) == 1)
            rig.state.apply("ADDED", snap("other", ns="ns", hosts=("other.local",)))
            rig.state.apply("MODIFIED", snap("bad", hosts=("*.b.local", "a.local")))
            # the file holds the change before the sync reports it: wait for both, not for the file alone
            await until(lambda: ("10.0.0.1", "other.local", "ns/other") in managed(path) and len(queue) == 2)
            assert len(posted) == 1  # one in flight (hung), the changed refusal waiting behind it
        finally:
            hung.set()
            poster.cancel()

    drive(rig, scenario)


def test_the_queue_is_bounded_and_keeps_the_newest_notice_per_object_and_reason(caplog):
    posted: list[Notice] = []
    queue = EventQueue(posted.append, limit=3)
    first = snap("a", hosts=("x.local",))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        queue.offer(Notice(first, "wildcard", ("*.one",), "first"))
        queue.offer(Notice(first, "wildcard", ("*.two",), "second"))  # replaces the first
        for name in ("b", "c", "d", "e"):
            queue.offer(Notice(snap(name), "wildcard", ("*.x",), name))

    async def drain():
        task = asyncio.create_task(queue.run())
        await queue.flush(5)
        task.cancel()

    asyncio.run(drain())
    assert [(n.snap.name, n.detail) for n in posted] == [("a", "second"), ("b", "b"), ("c", "c")]
    assert queue.dropped == 2
    assert len(messages(caplog, "dropped")) == 1  # said once, not per dropped notice


# -------------------------------------------------------------------------------- point 8: log injection


@pytest.mark.parametrize(
    "evil", ["a.local\n2024-01-01T00:00:00.000Z INFO forged: added", "a\r\x1b[2Jb.local"]
)
def test_untrusted_values_cannot_forge_a_log_line(path, caplog, capsys, evil):
    rig = make_rig(path)

    async def scenario():
        list_scope(rig.state, "ns", snap("evil", hosts=(evil, "ok.local")))
        await until(lambda: rig.health.ready)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        drive(rig, scenario)
    (line,) = messages(caplog, "refused")
    assert line.isprintable(), line
    assert repr(evil.lower())[1:-1] in line  # escaped, still readable
    (notice,) = rig.events.calls
    assert notice.message.isprintable()


def test_dry_run_output_escapes_refused_names(path, capsys):
    rig = make_rig(path, mode=ModeSettings(dry_run=True))

    async def scenario():
        list_scope(rig.state, "ns", snap("evil", hosts=("a.local\n10.6.6.6 bank.example", "ok.local")))
        await until(lambda: rig.writer.done.is_set())

    drive(rig, scenario)
    out = capsys.readouterr().out
    assert "\n10.6.6.6 bank.example" not in out
    assert "a.local\\n10.6.6.6 bank.example" in out


# ---------------------------------------------------------------------------- point 13: the change log


def run_once(path, caplog, *objects):
    rig = make_rig(path)

    async def scenario():
        list_scope(rig.state, "ns", *objects)
        await until(lambda: rig.health.ready)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        drive(rig, scenario)
    return [r.getMessage() for r in caplog.records]


def test_a_restart_on_an_up_to_date_file_logs_no_change(path, caplog):
    objects = [snap("a", hosts=("a.local",)), snap("b", hosts=("b.local",))]
    first = run_once(path, caplog, *objects)
    assert sum(m.startswith("added ") for m in first) == 2
    again = run_once(path, caplog, *objects)
    assert not [m for m in again if m.startswith(("added ", "removed ", "updated "))], again


def test_the_restart_after_a_crash_names_the_stale_entries_it_removes(path, caplog):
    run_once(path, caplog, snap("a", hosts=("a.local",)), snap("gone", hosts=("gone.local",)))
    # the process was killed; meanwhile ns/gone was deleted
    after = run_once(path, caplog, snap("a", hosts=("a.local",)))
    changes = [m for m in after if m.startswith(("added ", "removed ", "updated "))]
    assert changes == ["removed stale gone.local (was 10.0.0.1, ns/gone; left by an earlier run)"]


def test_an_unchanged_owner_is_not_repeated_in_updated_lines(path, caplog):
    rig = make_rig(path)

    async def scenario():
        list_scope(rig.state, "ns", snap("a", hosts=("a.local",)), snap("b", hosts=("b.local",)))
        await until(lambda: rig.count("written") == 1)
        rig.state.apply("MODIFIED", snap("a", hosts=("a.local",), ip="10.0.0.2"))
        await until(lambda: rig.count("written") == 2)
        rig.state.apply("DELETED", snap("a", hosts=("a.local",)))
        rig.state.apply("MODIFIED", snap("b", hosts=("b.local", "a.local"), ip="10.0.0.3"))
        await until(lambda: rig.count("written") == 3)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        drive(rig, scenario)
    updated = messages(caplog, "updated ")
    assert updated[0] == "updated a.local -> 10.0.0.2 (was 10.0.0.1; ns/a)"
    assert "updated a.local -> 10.0.0.3 (ns/b; was 10.0.0.2, ns/a)" in updated
