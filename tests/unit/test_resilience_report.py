"""tests/e2e/resilience_report.py: how the resilience test's requests become the per-phase figures and the
table of docs/resilience.md (pure logic, no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.resilience_report import BEGIN, END, Phase, render_doc, table


def req(t: float, status: int | None, pod: str = "gw-a", dt: float = 0.01) -> dict:
    return {"t": t, "dt": dt, "status": status, "pod": pod, "error": None if status == 200 else "boom"}


def test_a_phase_counts_its_requests_during_and_after_the_fault():
    phase = Phase("store down", "proxy disabled", True, start=10, restored=20, end=25)
    requests = [
        req(9.9, 200),  # the phase before
        req(10, 503),
        req(15, 503, dt=0.5),
        req(19.99, 200),
        req(20, 200, pod="gw-b"),
        req(24.9, 200),
        req(25, 503),  # the phase after
    ]
    s = phase.summary(requests)
    assert (s["sent"], s["failed"], s["failed_during"], s["failed_after"], s["after"]) == (5, 2, 2, 0, 2)
    assert s["survived"] is True
    assert s["pods"] == ["gw-a", "gw-b"]
    assert s["median_ms_during"] == 10  # of 10 ms, 500 ms, 10 ms
    assert s["errors"] == ["boom"]


def test_a_failure_after_the_restore_means_the_path_did_not_come_back():
    phase = Phase("pods", "delete pod", False, start=0, restored=5, end=8)
    s = phase.summary([req(1, 200), req(6, None), req(7, 200)])
    assert s["survived"] is False and s["failed_after"] == 1
    assert Phase("p", "x", False, 0, 5, 8).summary([req(1, 200)])["survived"] is False  # nothing after


def results() -> dict:
    phases = [Phase("latency", "a toxic", False, 0, 5, 8), Phase("store down", "off", True, 8, 12, 14)]
    names = [req(1, 200), req(6, 200), req(9, 503), req(13, 200)]
    pf = [req(1, 200), req(6, 200), req(9, 503), req(13, None)]
    return {
        "run": "2026-01-01 00:00 UTC",
        "where": "here",
        "paths": {
            "names": {"phases": [p.summary(names) for p in phases]},
            "port-forward": {"phases": [p.summary(pf) for p in phases]},
        },
    }


def test_the_table_has_a_row_per_phase_and_both_ways():
    lines = table(results()).splitlines()
    assert lines[0].count("sent") == 2
    assert lines[2] == "| latency | a toxic | 2 | 0 | yes | 2 | 0 | yes |"
    assert lines[3] == "| store down | off | 2 | 1 | yes | 2 | 2 | **no** |"
    assert lines[4] == "| **all** | | 4 | 1 | | 4 | 2 | |"


def test_the_doc_changes_only_between_its_markers(tmp_path: Path):
    doc = tmp_path / "resilience.md"
    doc.write_text(f"# Title\nprose\n{BEGIN}\nold table\n{END}\n\nmore prose\n")
    render_doc(results(), doc)
    text = doc.read_text()
    assert text.startswith(f"# Title\nprose\n{BEGIN}\n| phase |")
    assert text.endswith(f"From the run of 2026-01-01 00:00 UTC (here).\n{END}\n\nmore prose\n")
    assert "old table" not in text
    doc.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        render_doc(results(), doc)
