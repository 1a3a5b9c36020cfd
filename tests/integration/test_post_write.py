"""--post-write-command with the real controller against the real API server: a slow command does not hold
back the next change (docs/architecture.md, decision 2); it runs again after, never twice at once."""

from __future__ import annotations

import pytest

from tests.helpers import eventually, managed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_a_slow_post_write_command_does_not_delay_the_next_change(
    start_controller, ingresses, namespace, hosts_file, tmp_path
):
    runs, go, running = tmp_path / "runs", tmp_path / "go", tmp_path / "running"
    runs.mkdir()
    go.mkdir()
    overlaps = tmp_path / "overlaps"
    # Each run: flag an overlap, note its start, wait for the test's go (a slow command, under our control).
    command = (
        f"mkdir {running} 2>/dev/null || echo overlap >> {overlaps}; "
        f"n=$(ls {runs} | grep -c started); touch {runs}/started-$n; "
        f"while [ ! -e {go}/$n ]; do sleep 0.05; done; "
        f"rmdir {running}; touch {runs}/done-$n"
    )
    ctl = start_controller(
        "--namespaces", namespace, "--hosts-file", str(hosts_file),
        "--post-write-command", command, "--post-write-timeout", "120",
    )  # fmt: skip
    try:
        ingresses.create(namespace, "app", ["app.local"], ips=["10.65.0.1"])
        eventually(lambda: (runs / "started-0").exists(), what="the first command to start")
        ingresses.set_status(namespace, "app", ["10.65.0.2"])
        # The first command is still running (it waits for go/0): the change reaches the file anyway.
        eventually(lambda: managed(hosts_file) == {("app.local", "10.65.0.2")}, what="the second change")
        assert not (runs / "done-0").exists() and not (runs / "started-1").exists()
        (go / "0").touch()
        eventually(lambda: (runs / "started-1").exists(), what="the command to run again (latest wins)")
        (go / "1").touch()
        eventually(lambda: (runs / "done-1").exists(), what="the second run to end")
        assert ctl.get("/readyz")[0] == 200
        assert ctl.stop() == 0
    finally:
        for n in range(4):
            (go / str(n)).touch()
    assert not overlaps.exists(), overlaps.read_text()
    assert not (runs / "started-2").exists()
