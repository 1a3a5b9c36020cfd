"""Watching a file from outside: every version of its content as it appears, and how often it was written."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

_IN_MODIFY, _IN_CLOSE_WRITE, _IN_MOVED_TO, _IN_CREATE = 0x2, 0x8, 0x80, 0x100


class FileWatcher:
    """inotify on the file's directory (rename replaces the inode): counts writes and bytes, and tells
    waiters when the content changed. A write = a rename onto the name, or a close after modification."""

    def __init__(self, path: Path, on_content: Callable[[float, bytes], None] | None = None) -> None:
        self.path = path
        self.name = path.name.encode()
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
        if libc.inotify_add_watch(self.fd, str(path.parent).encode(), mask) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        self.on_content = on_content
        self.writes = 0
        self.bytes = 0
        self.events: list[tuple[float, int]] = []  # (time, size) per write
        self._modified = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.content = path.read_bytes() if path.exists() else b""
        self.version = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="file watcher")
        self._thread.start()

    def reset_counts(self) -> None:
        with self._lock:
            self.writes, self.bytes, self.events = 0, 0, []

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                continue
            now = time.monotonic()
            changed = False
            off = 0
            while off < len(data):
                _wd, mask, _cookie, length = struct.unpack_from("iIII", data, off)
                name = data[off + 16 : off + 16 + length].rstrip(b"\0")
                off += 16 + length
                if name != self.name:
                    continue
                if mask & _IN_MODIFY:
                    self._modified = True
                    changed = True
                if mask & _IN_MOVED_TO or (mask & _IN_CLOSE_WRITE and self._modified):
                    self._modified = False
                    changed = True
                    self._count(now)
            if changed:
                self._refresh(now)

    def _count(self, now: float) -> None:
        with contextlib.suppress(OSError):
            size = self.path.stat().st_size
            with self._lock:
                self.writes += 1
                self.bytes += size
                self.events.append((now, size))

    def _refresh(self, now: float) -> None:
        try:
            content = self.path.read_bytes()
        except OSError:
            return
        with self._cond:
            self.content = content
            self.version += 1
            self._cond.notify_all()
        if self.on_content:
            self.on_content(now, content)

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float) -> float | None:
        """Wait until predicate(content); the monotonic time it was first seen true, None on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate(self.content):
                    return time.monotonic()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    # the last read may predate a write we have not been told about yet
                    self.content = self.path.read_bytes() if self.path.exists() else b""
                    return time.monotonic() if predicate(self.content) else None
                self._cond.wait(min(remaining, 0.05))
                if not self._thread.is_alive():
                    return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.fd)
