"""The block watch with the real writer on a real file: another program's removal or edit of the block is
reported on /readyz and repaired by the writer; lines outside the block are none of its business."""

from __future__ import annotations

import asyncio
import logging

import pytest

from controller.engine.hostsfile import HostsFile
from controller.serve.health import Reason
from controller.sync import blockwatch
from controller.sync.blockwatch import CHANGED, MISSING, BlockWatch
from tests.unit.sync.test_writer import USER, drive, list_scope, make_rig, snap, until

POLL = 0.02


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "hosts"
    p.write_bytes(USER)
    return p


@pytest.fixture(autouse=True)
def short_delays(monkeypatch):
    monkeypatch.setattr(blockwatch, "REPAIR_DELAYS", (0.2, 0.3, 0.4))


def watched(rig) -> BlockWatch:
    return BlockWatch(rig.hosts, rig.writer, rig.health, rig.metrics, poll=POLL)


def repairs(rig) -> float:
    return rig.value("block_repairs_total")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda path: HostsFile(path).cleanup(), MISSING),  # `--cleanup` in another process
        (lambda path: path.write_bytes(path.read_bytes().replace(b"10.0.0.1", b"10.9.9.9")), CHANGED),
    ],
)
def test_a_removed_or_changed_block_is_reported_then_repaired(path, damage, reason):
    rig = make_rig(path)

    async def scenario():
        list_scope(rig.state, "ns", snap("a"))
        await until(lambda: rig.health.ready)
        written = path.read_bytes()
        watch = asyncio.create_task(watched(rig).run())
        try:
            await asyncio.sleep(3 * POLL)  # its first look: all is well
            assert not rig.health.blocked_by(Reason.BLOCK)
            damage(path)
            await until(lambda: rig.health.message(Reason.BLOCK) == reason)
            assert not rig.health.serving and reason in rig.health.why_not_ready()
            await until(lambda: not rig.health.blocked_by(Reason.BLOCK))
            assert path.read_bytes() == written and rig.health.serving
            assert repairs(rig) == 1
        finally:
            watch.cancel()

    drive(rig, scenario)


def test_lines_added_outside_the_block_are_left_alone(path):
    rig = make_rig(path)

    async def scenario():
        list_scope(rig.state, "ns", snap("a"))
        await until(lambda: rig.health.ready)
        written = rig.count("written")
        watch = asyncio.create_task(watched(rig).run())
        try:
            with path.open("ab") as f:
                f.write(b"10.0.0.9 nexus.corp.example\n")  # `tee -a /etc/hosts`
            await asyncio.sleep(20 * POLL)
            assert not rig.health.blocked_by(Reason.BLOCK) and repairs(rig) == 0
            assert rig.count("written") == written
        finally:
            watch.cancel()

    drive(rig, scenario)


def test_a_block_removed_again_soon_after_its_repair_waits_longer(path, caplog):
    rig = make_rig(path)
    caplog.set_level(logging.WARNING, logger="controller")

    async def scenario():
        list_scope(rig.state, "ns", snap("a"))
        await until(lambda: rig.health.ready)
        watch = watched(rig)
        task = asyncio.create_task(watch.run())
        try:
            for round in range(3):
                await asyncio.sleep(3 * POLL)
                HostsFile(path).cleanup()
                await until(lambda: rig.health.blocked_by(Reason.BLOCK))
                assert watch._delay == blockwatch.REPAIR_DELAYS[round]  # the quiet time this repair asks for
                await until(lambda: not rig.health.blocked_by(Reason.BLOCK))
            assert repairs(rig) == 3
        finally:
            task.cancel()

    drive(rig, scenario)
    warnings = [r.getMessage() for r in caplog.records if MISSING in r.getMessage()]
    assert len(warnings) == 3 and "in a row" not in warnings[0]
    assert "3 times in a row" in warnings[2] and "keeps removing or changing it" in warnings[2]
