"""The block removed or changed by another program while the controller runs: noticed within seconds, /readyz
503 with the reason meanwhile, repaired by a normal sync, and not fought in a loop
(controller/sync/blockwatch.py).

The real controller against the real API server, `k8s-hosts-controller --cleanup` as a second process.
"""

from __future__ import annotations

import pytest

from tests.helpers import eventually, managed, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# Far above what a repair takes (a second or two), far below the 60 s resync that repaired it before.
WAIT = 30.0
RESYNC = ["--resync-interval", "600"]  # the periodic re-read must not be what repairs it here
MISSING = "the block is missing from the file, repairing"  # the reasons /readyz gives
CHANGED = "the block in the file was changed by another program, repairing"


def repaired_after(ctl, hosts_file, expected: set, reason: str) -> list[tuple[int, str]]:
    """Poll /readyz until the block holds ``expected`` again and /readyz is 200; every answer seen on the way.
    Asserts that one of them was 503 naming ``reason``."""
    seen: list[tuple[int, str]] = []

    def back() -> bool:
        seen.append(ctl.get("/readyz"))
        return seen[-1][0] == 200 and managed(hosts_file) == expected

    eventually(back, timeout=WAIT, interval=0.02, what="the block back and /readyz 200")
    assert any(status == 503 and reason in body for status, body in seen), seen[:3]
    return seen


def test_a_cleanup_while_running_is_repaired_and_readyz_says_so_meanwhile(
    start_controller, ingresses, namespace, hosts_file
):
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file), *RESYNC)
    ingresses.create(namespace, "app", ["app.local"], ips=["10.75.0.1"])
    expected = {("app.local", "10.75.0.1")}
    eventually(lambda: managed(hosts_file) == expected, what="the first line")
    written = hosts_file.read_bytes()

    cleaned = run_cli("--cleanup", "--hosts-file", str(hosts_file))
    assert cleaned.returncode == 0 and "removed the" in cleaned.stderr, cleaned.stderr
    repaired_after(ctl, hosts_file, expected, MISSING)
    assert hosts_file.read_bytes() == written  # exactly as before: a normal sync
    assert ctl.metric("k8s_hosts_controller_block_repairs_total") == 1
    assert f"{hosts_file}: {MISSING}" in ctl.log() and "block is back" in ctl.log()


def test_a_changed_block_is_repaired_and_a_repeated_removal_is_not_fought_in_a_loop(
    start_controller, ingresses, namespace, hosts_file
):
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file), *RESYNC)
    ingresses.create(namespace, "app", ["app.local"], ips=["10.75.0.2"])
    expected = {("app.local", "10.75.0.2")}
    eventually(lambda: managed(hosts_file) == expected, what="the first line")
    written = hosts_file.read_bytes()

    # An edit inside our block (another address): put back as the cluster says.
    hosts_file.write_bytes(written.replace(b"10.75.0.2", b"10.99.9.9"))
    repaired_after(ctl, hosts_file, expected, CHANGED)
    assert hosts_file.read_bytes() == written

    # Removed again soon after each repair: each repair waits longer, and the log says why.
    for _ in range(2):
        assert run_cli("--cleanup", "--hosts-file", str(hosts_file)).returncode == 0
        repaired_after(ctl, hosts_file, expected, MISSING)
    assert "3 times in a row" in ctl.log(), ctl.tail(20)
    assert ctl.metric("k8s_hosts_controller_block_repairs_total") == 3
    assert ctl.stop() == 0
