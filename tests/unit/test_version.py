"""One version for every artifact: package, CLI, chart, image, changelog."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import yaml

from controller import __version__
from testkit.controlplane import REPO_ROOT

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")


def test_version_is_semver():
    # The chart's version must be SemVer (helm refuses anything else), and it is the same string.
    assert SEMVER.match(__version__), __version__


def test_pyproject_reads_the_version_from_the_package():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"], "the version lives in controller/__init__.py only"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "controller.__version__"}


def test_chart_version_and_app_version_are_the_package_version():
    chart = yaml.safe_load((REPO_ROOT / "chart" / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == (__version__, __version__), (
        f"chart/Chart.yaml: set version and appVersion to {__version__} (controller/__init__.py)"
    )


def test_dockerfile_default_version_is_the_package_version():
    match = re.search(r"^ARG VERSION=(\S+)$", (REPO_ROOT / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile declares ARG VERSION=<version>"
    assert match.group(1) == __version__


def test_changelog_starts_with_the_current_version():
    text = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "keepachangelog.com" in text
    versions = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    released = [v for v in versions if v != "Unreleased"]
    assert released and released[0] == __version__, f"CHANGELOG.md: the first version is {__version__}"


def test_cli_prints_the_version():
    proc = subprocess.run(
        [sys.executable, "-m", "controller", "--version"], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"k8s-hosts-controller {__version__}"
