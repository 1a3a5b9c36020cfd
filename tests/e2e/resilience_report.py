"""The figures of the resilience test (tests/e2e/test_resilience.py): per-phase summaries of the client's
requests, the table and the plot of docs/resilience.md.

The test writes docs/resilience/results.json, docs/resilience/resilience.png and the table between the markers
of docs/resilience.md. `python -m tests.e2e.resilience_report` renders the plot and the table again from the
JSON (e.g. after a change of layout), without a cluster."""

from __future__ import annotations

import json
import re
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS = REPO_ROOT / "docs" / "resilience"
DOC = REPO_ROOT / "docs" / "resilience.md"
BEGIN, END = "<!-- resilience-table:begin -->", "<!-- resilience-table:end -->"
PATHS = ("names", "port-forward")


@dataclass
class Phase:
    """One step of the scenario: [start, restored) is when the fault is on (for a steady phase: its action),
    [restored, end) the requests after it, which show whether the client path came back by itself."""

    name: str
    what: str
    injected: bool  # a fault whose requests are meant to fail (reset_peer, the store's proxy disabled)
    start: float
    restored: float = 0.0
    end: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self, requests: list[dict]) -> dict:
        mine = [r for r in requests if self.start <= r["t"] < self.end]
        during = [r for r in mine if r["t"] < self.restored]
        after = [r for r in mine if r["t"] >= self.restored]
        failed = [r for r in mine if r["status"] != 200]
        return {
            **asdict(self),
            "sent": len(mine),
            "failed": len(failed),
            "failed_during": sum(r["status"] != 200 for r in during),
            "failed_after": sum(r["status"] != 200 for r in after),
            "after": len(after),
            # Back by itself: every request after the phase answered, with nothing restarted.
            "survived": bool(after) and all(r["status"] == 200 for r in after),
            "median_ms_during": round(1000 * statistics.median(r["dt"] for r in during)) if during else None,
            "pods": sorted({r["pod"] for r in mine if r.get("pod")}),
            "errors": sorted({re.sub(r":\d+->", ":*->", r.get("error") or "")[:120] for r in failed})[:4],
        }


def cumulative(requests: list[dict], answered: bool) -> list[int]:
    total, out = 0, []
    for r in requests:
        total += (r["status"] == 200) == answered
        out.append(total)
    return out


def table(results: dict) -> str:
    """The markdown table: one row per phase, the two paths side by side."""
    paths = [p for p in PATHS if p in results["paths"]]
    head = "| phase | fault (Toxiproxy API by name, kubectl) |"
    rule = "|---|---|"
    for p in paths:
        head += f" {p}: sent | failed | path alive after |"
        rule += "---:|---:|:---:|"
    rows = [head, rule]
    phases = results["paths"][paths[0]]["phases"]
    for i, phase in enumerate(phases):
        row = f"| {phase['name']} | {phase['what']} |"
        for p in paths:
            s = results["paths"][p]["phases"][i]
            row += f" {s['sent']} | {s['failed']} | {'yes' if s['survived'] else '**no**'} |"
        rows.append(row)
    total = "| **all** | |"
    for p in paths:
        ph = results["paths"][p]["phases"]
        total += f" {sum(s['sent'] for s in ph)} | {sum(s['failed'] for s in ph)} | |"
    rows.append(total)
    return "\n".join(rows)


def plot(results: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [p for p in PATHS if p in results["paths"]]
    fig, axes = plt.subplots(len(paths), 1, figsize=(11, 3.3 * len(paths)), squeeze=False)
    for ax, name in zip(axes[:, 0], paths, strict=True):
        data = results["paths"][name]
        reqs = data["requests"]
        ok = [r for r in reqs if r["status"] == 200]
        bad = [r for r in reqs if r["status"] != 200]
        for phase in data["phases"]:
            color = "tab:red" if phase["injected"] else "tab:blue"
            ax.axvspan(phase["start"], phase["restored"], color=color, alpha=0.12, lw=0)
            middle = (phase["start"] + phase["restored"]) / 2
            ax.text(
                middle,
                0.97,
                phase["name"],
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="top",
                fontsize=8,
            )

        def ms(rs: list[dict]) -> list[float]:
            return [max(1000 * r["dt"], 0.1) for r in rs]  # log scale: a refused connection takes ~0 ms

        ax.scatter([r["t"] for r in ok], ms(ok), s=6, color="tab:green", label="answered")
        ax.scatter([r["t"] for r in bad], ms(bad), s=18, marker="x", color="tab:red", label="failed")
        counts = ax.twinx()  # requests over time: how many answered and how many failed so far
        times = [r["t"] for r in reqs]
        counts.step(times, cumulative(reqs, True), where="post", color="tab:green", lw=0.8, alpha=0.7)
        counts.step(times, cumulative(reqs, False), where="post", color="tab:red", lw=0.8, alpha=0.7)
        counts.set_ylabel("requests so far (lines)")
        if data.get("forward_died_at") is not None:
            ax.axvline(data["forward_died_at"], color="black", ls="--", lw=1, label="port-forward exited")
        sent, failed = len(reqs), len(bad)
        ax.set_title(f"{name}: {data['gateway_url']} — {sent} requests, {failed} failed", fontsize=10)
        ax.set_yscale("log")
        ax.set_ylabel("response time (ms)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="center right", fontsize=8)
    axes[-1, 0].set_xlabel("seconds since the scenario started")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def render_doc(results: dict, doc: Path = DOC) -> None:
    """Replaces the table between the markers of DOC (the rest of the page is prose, kept as it is)."""
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc}: the markers {BEGIN} and {END} are missing")
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    run = results["run"]
    body = f"\n{table(results)}\n\nFrom the run of {run} ({results['where']}).\n"
    doc.write_text(f"{before}{BEGIN}{body}{END}{after}")


def write(results: dict, out_dir: Path = RESULTS, doc: Path = DOC) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    plot(results, out_dir / "resilience.png")
    render_doc(results, doc)
    print(f"written: {out_dir / 'results.json'}, {out_dir / 'resilience.png'}, the table in {doc}")


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else RESULTS / "results.json"
    results = json.loads(source.read_text())
    plot(results, source.parent / "resilience.png")
    render_doc(results)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
