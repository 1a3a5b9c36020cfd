"""How the benchmarks report: the machine they ran on and its load, percentiles, Markdown tables, JSON and
plots in the results directory (bench/results/, or --results DIR: `make bench` writes docs/benchmarks/)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
from collections.abc import Iterable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
_EMITTED: list[str] = []


def set_results(directory: Path) -> None:
    global RESULTS
    RESULTS = directory.resolve()


def emit(text: str) -> None:
    """Print a result, and keep it for figures.md in the results directory."""
    print(text, flush=True)
    _EMITTED.append(text)


def save_figures(header: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "figures.md"
    path.write_text(header + "\n\n" + "\n\n".join(_EMITTED) + "\n")
    return path


def load() -> str:
    """The 1-minute load average: the machine is shared, so every figure says what else ran."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def machine() -> dict[str, str]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    try:
        import kopf

        kopf_version = getattr(kopf, "__version__", "") or _dist_version("kopf")
    except Exception:
        kopf_version = "?"
    return {
        "nproc": str(os.cpu_count()),
        "memory": mem,
        "cpu": model,
        "python": platform.python_version(),
        "kopf": kopf_version,
        "kernel": platform.release(),
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def percentile(values: Iterable[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, sep, *body])


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def save_json(name: str, data: object) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def save_plot(fig, name: str) -> Path:
    out = RESULTS / f"{name}.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")
    return out


def bar_panels(results: dict, name: str, panels: list[tuple[str, str, str]]) -> Path:
    """Bars per size N, one group per implementation, one panel per (result key, y label, title)."""
    fig, axes = plt().subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5))
    labels = list(results["impls"])
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        runs = results["impls"][label]
        xs = [j + i * width for j in range(len(runs))]
        ticks = [j + (len(labels) - 1) * width / 2 for j in range(len(runs))]
        for ax, (key, _, _) in zip(axes, panels, strict=True):
            ax.bar(xs, [r[key] for r in runs], width, label=label)
            ax.set_xticks(ticks, [f"N={r['n']}" for r in runs])
    for ax, (_, ylabel, title) in zip(axes, panels, strict=True):
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend()
    return save_plot(fig, name)
