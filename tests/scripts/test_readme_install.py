"""The README's real-usage install block, run as written (between its markers) in a fresh home directory with
the system's python3, from a copy of the checkout: it must get as far as `k8s-hosts-controller --help`.

A stock Debian or Ubuntu refuses `pip install .` into the system Python (PEP 668) and sudo's secure_path
finds no venv command; the block avoids both, and this test keeps it working. It needs the package index
(the dependencies are installed like a user's would be)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- real-usage-install -->", "<!-- /real-usage-install -->"


def install_block(readme: str) -> str:
    """The shell commands of the fenced block between the markers, as written."""
    start, end = readme.index(BEGIN), readme.index(END)
    fenced = re.search(r"```sh\n(.*?)```", readme[start:end], re.S)
    assert fenced, "no ```sh block between the README's real-usage markers"
    return fenced.group(1)


def checkout_copy(target: Path) -> Path:
    """The tracked files of the checkout, as a user's clone has them (no build/ or .egg-info of ours)."""
    files = (
        subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_the_block_is_what_a_user_types():
    block = install_block((REPO / "README.md").read_text())
    assert "python3 -m venv" in block and "pip install ." in block and "--help" in block
    assert "sudo" not in block  # installing needs no root; sudo is for writing /etc/hosts, later
    assert "pip install k8s-hosts-controller" not in (REPO / "README.md").read_text()  # not published


@pytest.mark.skipif(shutil.which("python3") is None, reason="no python3 on PATH")
def test_the_readme_install_block_works_in_a_fresh_home(tmp_path: Path):
    block = install_block((REPO / "README.md").read_text())
    home = tmp_path / "home"
    home.mkdir()
    checkout = checkout_copy(tmp_path / "checkout")
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        # the machine's pip cache and index settings, as the user's own pip would have them
        **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "usage: k8s-hosts-controller" in done.stdout
    command = home / ".local" / "k8s-hosts-controller" / "bin" / "k8s-hosts-controller"
    assert command.is_file()  # the absolute path the README then gives sudo
