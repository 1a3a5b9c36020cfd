"""When a write counts as stale (hosts_file_stale_total): the file we hold is unlinked AND our path still
names it, as a bind mount of a file the host replaced does. A plain path replaced by rename while a sync held
the old file is not stale: the path names the new file, which the next sync opens."""

from __future__ import annotations

import os
from pathlib import Path

from controller.engine.hostsfile import _unreachable


def test_a_file_replaced_by_rename_under_an_open_descriptor_is_not_stale(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(b"127.0.0.1 localhost\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        (tmp_path / "hosts.editor").write_bytes(b"127.0.0.1 localhost\n# edited\n")
        os.rename(tmp_path / "hosts.editor", path)
        held = os.fstat(fd)
        assert held.st_nlink == 0
        assert not _unreachable(held, str(path))
    finally:
        os.close(fd)


def test_a_held_file_whose_path_is_gone_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(b"127.0.0.1 localhost\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        path.unlink()
        assert _unreachable(os.fstat(fd), str(path))
    finally:
        os.close(fd)


def test_a_linked_file_is_never_stale(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(b"127.0.0.1 localhost\n")
    assert not _unreachable(os.stat(path), str(path))
