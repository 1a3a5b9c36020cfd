"""Fault-injection fixtures: an API writer on the shared control plane, a hosts file."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.api import Api
from tests.faults.helpers import USER


@pytest.fixture
def fapi(control_plane) -> Api:
    return Api(control_plane)


@pytest.fixture
def user_hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_bytes(USER)
    path.chmod(0o644)
    return path
