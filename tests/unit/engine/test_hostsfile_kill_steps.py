"""A writer killed at each step of an in-place write that moves the user's lines after the block.

Not by chance: a forked child runs the engine with its file system calls (pwrite, ftruncate, fsync) counted,
and leaves with os._exit (as abrupt as SIGKILL: no cleanup, the kernel closes the file and drops the lock)
right before call k, or in the middle of a write (half its bytes written), for every k until the write
completes. After each kill: a reader sees no torn user line and reads the old or the new content; a restart
(a new sync) writes exactly what the killed one meant to; --cleanup gives back the user's bytes exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.cli import main as cli_main
from controller.engine.block import DEFAULT_MARKER, remove_block, splice
from controller.engine.entries import Entry
from controller.engine.hostsfile import HostsFile

M = DEFAULT_MARKER
KILLED = 86
BEFORE = b"127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\r\n# caf\xe9 \xff\n"
# Lines another program appended after our block; the last one without a newline in one variant.
AFTER = b"".join(
    b"10.9.%d.%d user-%d.example  # the user's own\n" % (i // 250, i % 250, i) for i in range(300)
)
AFTERS = {"after": AFTER, "after, no final newline": AFTER + b"10.8.8.8 last.example"}
FEW = [Entry("chart-dash.local", "172.18.0.200", "tyk/dashboard-ingress")]
MANY = [Entry(f"svc-{i}.apps.local", f"172.18.{i // 250}.{i % 250 + 1}", f"tyk/ing-{i}") for i in range(200)]
OTHER = [Entry("chart-gw.local", "172.18.0.201", "tyk/gateway-ingress")]  # a few bytes shorter
# (entries in the file, entries the killed write was making; None: a cleanup)
WRITES = {
    "grow": (FEW, MANY),
    "shrink": (MANY, FEW),
    "small change": (FEW, OTHER),
    "cleanup": (MANY, None),
}


def run_until(path: Path, mode: str, target: list[Entry] | None, step: int, half: bool) -> int:
    """Run one sync (or cleanup) in a child that dies at file system call ``step``; its exit code."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; it never returns into pytest
        code = 1
        try:
            calls = 0
            real = {name: getattr(os, name) for name in ("pwrite", "ftruncate", "fsync")}

            def counted(name: str) -> Callable[..., object]:
                def call(fd: int, *args: object) -> object:
                    nonlocal calls
                    calls += 1
                    if calls == step:
                        if half and name == "pwrite" and len(args[0]) > 1:  # type: ignore[arg-type]
                            data = bytes(args[0])  # type: ignore[call-overload]
                            real["pwrite"](fd, data[: len(data) // 2], args[1])
                        os._exit(KILLED)
                    return real[name](fd, *args)

                return call

            for name in real:
                setattr(os, name, counted(name))
            hosts = HostsFile(path, mode="auto" if mode == "auto after EBUSY" else mode)
            hosts._rename_failed = mode == "auto after EBUSY"  # as after a bind mount's EBUSY
            if target is None:
                hosts.cleanup()
            else:
                hosts.sync(target)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def kills(path: Path, original: bytes, mode: str, target: list[Entry] | None, half: bool):
    """Yield the file after a kill at each step, restoring ``original`` before each run."""
    step = 1
    while True:
        path.write_bytes(original)
        code = run_until(path, mode, target, step, half)
        if code == 0:
            assert step > 2, "the write made fewer calls than expected: nothing was tested"
            return
        assert code == KILLED, f"the writer failed on its own at step {step}"
        yield step, path.read_bytes()
        step += 1


def lines(content: bytes) -> set[bytes]:
    return set(content.split(b"\n"))


def assert_no_torn_user_line(raw: bytes, old: bytes, new: bytes) -> None:
    """Every line a resolver reads (not blank, not a comment) is a whole line of the old or new content."""
    whole = lines(old) | lines(new)
    for line in raw.split(b"\n"):
        text = line.strip(b" \t\r")
        if text and not text.startswith(b"#"):
            assert line in whole, f"a torn line: {line[:80]!r}"


def check_recovery(tmp_path: Path, raw: bytes, old: bytes, new: bytes, mode: str, target) -> None:
    user = remove_block(old, M)
    # A reader (wait, --dry-run, the writer's parse) sees the old or the new content.
    killed = tmp_path / "killed"
    killed.write_bytes(raw)
    assert HostsFile(killed).read() in (old, new)
    # Restart: a new sync writes what the killed one meant to, then the cleanup gives back the user's bytes.
    restarted = tmp_path / "restarted"
    restarted.write_bytes(raw)
    hosts = HostsFile(restarted, mode="inplace" if mode != "rename" else mode)
    if target is None:
        hosts.cleanup()
        assert restarted.read_bytes() == user
    else:
        hosts.sync(target)
        assert restarted.read_bytes() == new
        assert hosts.cleanup().changed
        assert restarted.read_bytes() == user
    # --cleanup (the real command line) straight after the kill.
    cleaned = tmp_path / "cleaned"
    cleaned.write_bytes(raw)
    assert cli_main(["--cleanup", "--hosts-file", str(cleaned), "--write-mode", "inplace"]) == 0
    assert cleaned.read_bytes() == user


@pytest.mark.parametrize("half", [False, True], ids=["between calls", "in the middle of a write"])
@pytest.mark.parametrize("after", list(AFTERS))
@pytest.mark.parametrize("write", list(WRITES))
@pytest.mark.parametrize("mode", ["inplace", "auto after EBUSY"])
def test_a_kill_at_each_step_of_an_in_place_write(
    tmp_path: Path, mode: str, write: str, after: str, half: bool
) -> None:
    current, target = WRITES[write]
    old = splice(BEFORE, current, M) + AFTERS[after]
    new = splice(old, target or [], M)
    assert old != new and remove_block(old, M) == BEFORE + b"\n" + AFTERS[after]
    path = tmp_path / "hosts"
    seen = 0
    for _step, raw in kills(path, old, mode, target, half):
        seen += 1
        if not half:  # between two calls; a write cut in the middle may mix old and new until repaired
            assert_no_torn_user_line(raw, old, new)
        check_recovery(tmp_path, raw, old, new, mode, target)
    assert seen >= 3


def test_a_restart_killed_at_each_step_of_its_repair(tmp_path: Path) -> None:
    """The first writer dies in the middle of its overwrite; the next one is killed at each of its own steps
    (putting the old bytes back, then writing); whoever comes last still gets every byte right."""
    old = splice(BEFORE, FEW, M) + AFTER
    new = splice(old, MANY, M)
    path = tmp_path / "hosts"
    torn = None
    for _step, raw in kills(path, old, "inplace", MANY, half=True):
        if raw not in (old, new) and not raw.startswith(new):
            torn = raw  # the last such state: the overwrite was cut in the middle
    assert torn is not None, "no kill left a torn file: the test tests nothing"
    seen = 0
    for _step, raw in kills(path, torn, "inplace", MANY, half=False):
        seen += 1
        check_recovery(tmp_path, raw, old, new, "inplace", MANY)
    assert seen >= 4  # the repair's own steps, then the write's


def test_the_record_is_not_mistaken_for_user_lines_that_look_like_it(tmp_path: Path) -> None:
    """A user line that copies a record's header (or a whole stale record) is the user's: kept as it is."""
    path = tmp_path / "hosts"
    original = splice(BEFORE, FEW, M) + AFTER
    stale = next(
        raw for _step, raw in kills(path, original, "inplace", MANY, half=False) if b"#### UNDO" in raw
    )
    fake = BEFORE + b"#### UNDO TYK-K8S-HOSTS 0 10 " + b"0" * 64 + b" ####\n" + stale[-5000:]
    content = splice(fake, FEW, M) + b"10.1.1.1 mine.local\n"
    path.write_bytes(content)
    assert HostsFile(path).read() == content
    HostsFile(path, mode="inplace").sync(MANY)
    assert remove_block(path.read_bytes(), M) == remove_block(content, M)


@pytest.mark.parametrize("restart_mode", ["rename", "auto"])
def test_a_restart_that_renames_replaces_what_a_killed_in_place_writer_left(
    tmp_path: Path, restart_mode: str
) -> None:
    """The next writer renames (another host's controller, or `auto` where rename works): it writes from the
    old content, also when its entries are the old ones (the file on disk still differs)."""
    old = splice(BEFORE, FEW, M) + AFTER
    path = tmp_path / "hosts"
    seen = 0
    for _step, raw in kills(path, old, "inplace", MANY, half=True):
        for entries in (MANY, FEW):
            restarted = tmp_path / "restarted"
            restarted.write_bytes(raw)
            HostsFile(restarted, mode=restart_mode).sync(entries)
            assert restarted.read_bytes() == splice(old, entries, M)
            seen += 1
    assert seen >= 6


BIND_KILLS = r"""
import json, os, subprocess, sys
from pathlib import Path
from controller.engine.block import DEFAULT_MARKER as M, remove_block, splice
from controller.engine.hostsfile import HostsFile
from tests.unit.engine.test_hostsfile_kill_steps import AFTER, BEFORE, FEW, MANY, run_until
d = Path(sys.argv[1])
src, dst = d / "host-hosts", d / "container-hosts"
for args in (["--make-rprivate", "/"], ["--bind", str(src), str(dst)]):
    p = subprocess.run(["mount", *args], capture_output=True, text=True)
    if p.returncode:
        print(json.dumps({"skip": "mount " + " ".join(args) + ": " + p.stderr.strip()})); sys.exit(0)
old = splice(BEFORE, FEW, M) + AFTER
new = splice(old, MANY, M)
out = []
for step in range(1, 50):
    src.write_bytes(old)  # the same inode: O_TRUNC, then the bytes
    code = run_until(dst, "auto", MANY, step, False)
    if code == 0:
        break
    raw = dst.read_bytes()
    hosts = HostsFile(dst, mode="auto")
    result = hosts.sync(MANY)
    synced = src.read_bytes() == new
    hosts.cleanup()
    cleaned = src.read_bytes() == remove_block(old, M)
    out.append([step, code, b"#### UNDO" in raw, result.mode, synced, cleaned])
out.append(sorted(n for n in os.listdir(d) if n.endswith(".tmp")))
print(json.dumps(out))
"""


def test_kills_on_a_real_bind_mount_in_auto_mode(tmp_path: Path) -> None:
    """auto on a real bind-mounted file: rename fails with EBUSY, the write goes in place; killed at each
    step (the temp file of the rename attempt too), the next writer and the cleanup are exact on the host."""
    if os.geteuid() != 0:
        pytest.skip(f"bind mounts need root; running as uid {os.geteuid()}")
    if not shutil.which("unshare") or not shutil.which("mount"):
        pytest.skip("unshare or mount not installed")
    for name in ("host-hosts", "container-hosts"):
        (tmp_path / name).write_bytes(b"")
    script = tmp_path / "bind_kills.py"
    script.write_text(BIND_KILLS)
    proc = subprocess.run(
        ["unshare", "-m", sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[3],
        # the script imports this module: the checkout first on its path, as for `python -m pytest`
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
    )
    if proc.returncode and "unshare" in proc.stderr:
        pytest.skip(f"unshare -m is not allowed here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    if isinstance(out, dict):
        pytest.skip(f"mounts are forbidden here: {out['skip']}")
    *steps, leftover = out
    assert len(steps) >= 5, steps  # the rename attempt's temp file, then the in-place steps
    for step, code, _record, mode, synced, cleaned in steps:
        assert code == KILLED, step
        # in place, or nothing to write (killed after the truncate: the file was already new)
        assert mode in ("inplace", None) and synced and cleaned, (step, mode, synced, cleaned)
    assert any(record for _, _, record, *_ in steps), "no kill came after the undo record: nothing tested"
    assert leftover == []


@pytest.mark.parametrize("half", [False, True], ids=["between calls", "in the middle of a write"])
@pytest.mark.parametrize("write", list(WRITES))
def test_a_line_appended_after_the_kill_is_kept(tmp_path: Path, write: str, half: bool) -> None:
    """Killed, then `tee -a` before the next sync: the restart and the cleanup keep the user's line."""
    current, target = WRITES[write]
    old = splice(BEFORE, current, M) + AFTER
    line = b"10.0.0.9 nexus.corp.example\n"
    path = tmp_path / "hosts"
    seen = 0
    for _step, raw in kills(path, old, "inplace", target, half):
        if not raw.endswith(b"\n"):
            continue  # a record cut in the middle of its one write: the line would be glued onto ours
        seen += 1
        appended = tmp_path / "appended"
        appended.write_bytes(raw + line)
        hosts = HostsFile(appended, mode="inplace")
        if target is not None:
            hosts.sync(target)
            assert appended.read_bytes() == splice(old + line, target, M)
        hosts.cleanup()
        assert appended.read_bytes() == BEFORE + b"\n" + AFTER + line
    assert seen >= 4
