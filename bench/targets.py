"""The implementations a benchmark runs: ours, extra command templates, and the public Go one (--reference).

A template decides what runs, with {kubeconfig} {hosts_file} {namespaces} {metrics_port} filled in.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

OURS_TEMPLATE = (
    f"{shlex.quote(sys.executable)} -m controller --namespaces {{namespaces}} --hosts-file {{hosts_file}} "
    "--kubeconfig {kubeconfig} --metrics-bind-address 127.0.0.1:{metrics_port}"
)
REFERENCE_MODULE = "github.com/TykTechnologies/k8s-hosts-controller"
REFERENCE_BIN_DIR = Path.home() / ".cache" / "k8s-hosts-controller" / "reference" / "bin"
REFERENCE_TEMPLATE = (
    f"{REFERENCE_BIN_DIR / 'k8s-hosts-controller'} --namespaces {{namespaces}} --hosts-file {{hosts_file}} "
    "--kubeconfig {kubeconfig}"
)


@dataclass(frozen=True)
class Impl:
    label: str
    template: str
    env: dict[str, str] = field(default_factory=dict)


def build_reference() -> tuple[Impl | None, str]:
    """go install the public Go implementation into the cache; (impl, message) — impl None on failure."""
    binary = REFERENCE_BIN_DIR / "k8s-hosts-controller"
    if shutil.which("go") is None:
        return None, "go is not installed (needed for --reference)"
    REFERENCE_BIN_DIR.mkdir(parents=True, exist_ok=True)
    cmd = ["go", "install", f"{REFERENCE_MODULE}@latest"]
    out = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "GOBIN": str(REFERENCE_BIN_DIR)}, cwd="/tmp"
    )
    if out.returncode != 0 or not binary.exists():
        text = (out.stderr or out.stdout).strip()
        return None, f"`GOBIN={REFERENCE_BIN_DIR} {' '.join(cmd)}` failed (exit {out.returncode}): {text}"
    return Impl("reference", REFERENCE_TEMPLATE), f"built {binary}"


def implementations(args) -> list[Impl]:
    impls = []
    if not args.no_ours:
        impls.append(Impl("ours", args.controller or OURS_TEMPLATE))
    names = getattr(args, "extra_name", None) or []
    for i, template in enumerate(args.extra or ()):
        impls.append(Impl(names[i] if i < len(names) else f"extra{i + 1}", template))
    if args.reference:
        impl, message = build_reference()
        print(f"[reference] {message}", flush=True)
        record_note("reference", message)
        if impl is not None:
            impls.append(impl)
    return impls


NOTES: dict[str, str] = {}


def record_note(key: str, text: str) -> None:
    NOTES[key] = text
