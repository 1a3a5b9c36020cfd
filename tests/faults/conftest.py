"""Fault-injection fixtures: an API writer on the shared control plane, a namespace, a hosts file."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bench.common import Api
from tests.faults.helpers import USER


@pytest.fixture
def fapi(control_plane) -> Api:
    return Api(control_plane)


@pytest.fixture
def fns(fapi: Api) -> str:
    name = f"f-{uuid.uuid4().hex[:8]}"
    fapi.namespace(name)
    return name


@pytest.fixture
def user_hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_bytes(USER)
    path.chmod(0o644)
    return path
