"""A hosts file whose last line has no newline: the block still ends with one, so that a line the user appends
(`echo ... | sudo tee -a /etc/hosts`, an O_APPEND write) stays a line of its own; cleanup gives back the
user's bytes, their missing final newline included, and the dry run's diff is one `patch` applies.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.engine.block import DEFAULT_MARKER, detect_newline, parse, remove_block, render_block, splice
from controller.engine.entries import Entry
from controller.engine.hostsfile import HostsFile
from controller.model import Rejection
from controller.sync.dryrun import print_dry_run
from controller.sync.plan import Plan
from tests.unit.engine.test_block_edges import ENTRIES, USER, without_block

M = DEFAULT_MARKER
END = b"#### END TYK-K8S-HOSTS ####"
# What the Tyk chart's Ingresses give (dashboard, gateway, developer portal, MDCB).
TYK = [
    Entry("chart-dash.local", "172.18.0.200", "tyk/dashboard-ingress"),
    Entry("chart-gw.local", "172.18.0.200", "tyk/gateway-ingress"),
    Entry("chart-portal.local", "172.18.0.200", "tyk/portal-ingress"),
    Entry("chart-mdcb.local", "172.18.0.201", "tyk-dp-1/mdcb-ingress"),
]
USER_FILE = (
    b"127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n# corp\n10.1.1.1 gw.corp.example"  # no final \n
)
APPENDED = b"10.0.0.9 nexus.corp.example\n"


def ended_by_us(block: bytes) -> bytes:
    """The block as splice appends it after a last line without newline: a tab after the BEGIN marker."""
    return block.replace(b" ####\n", b" ####\t\n", 1)


def tee_a(path: Path, data: bytes) -> None:
    """What `tee -a` does: one write with O_APPEND."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        assert os.write(fd, data) == len(data)
    finally:
        os.close(fd)


@pytest.mark.parametrize("mode", ["rename", "inplace"])
def test_a_line_appended_after_the_block_stays_its_own_and_cleanup_gives_back_the_users_bytes(
    tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(USER_FILE)
    hosts = HostsFile(path, mode=mode)
    assert hosts.sync(TYK).changed
    assert path.read_bytes().endswith(END + b"\n")

    tee_a(path, APPENDED)
    assert b"nexus.corp.example" in path.read_bytes().splitlines()[-1]
    assert path.read_bytes().splitlines()[-1] == APPENDED.rstrip(b"\n")  # not glued onto our END line
    assert "nexus.corp.example" in hosts.parse().outside_names

    assert hosts.sync(TYK[:2]).changed  # the next write, now with the user's line after the block
    content = path.read_bytes()
    assert content.count(END) == 1 and content.endswith(END + b"\n" + APPENDED)
    assert hosts.cleanup().changed
    # The user's bytes, then their appended line as a line of its own.
    assert path.read_bytes() == USER_FILE + b"\n" + APPENDED


@pytest.mark.parametrize("mode", ["rename", "inplace"])
def test_without_an_append_cleanup_gives_back_the_missing_final_newline(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(USER_FILE)
    hosts = HostsFile(path, mode=mode)
    for entries in (TYK, TYK[:1], TYK[::-1]):
        hosts.sync(entries)
        assert path.read_bytes() == USER_FILE + b"\n" + ended_by_us(render_block(entries, M))
    assert hosts.cleanup().changed
    assert path.read_bytes() == USER_FILE


def test_a_block_written_by_an_earlier_version_without_final_newline_is_rewritten_with_one() -> None:
    # Earlier versions wrote user + blank line + block without its last newline.
    old = USER_FILE + b"\n\n" + render_block(TYK, M)[:-1]
    assert remove_block(old, M) == USER_FILE
    new = splice(old, TYK, M)
    assert new == USER_FILE + b"\n" + ended_by_us(render_block(TYK, M))
    assert remove_block(new, M) == USER_FILE


@given(st.one_of(USER, st.binary(max_size=200)), ENTRIES, st.sampled_from([b"\n", b"\r\n"]))
def test_insert_append_a_line_remove_gives_the_users_bytes_and_the_line(
    user: bytes, entries: list[Entry], crlf: bytes
) -> None:
    user = without_block(user)
    line = b"10.0.0.9 nexus.corp.example" + crlf
    with_block = splice(user, entries, M)
    appended = with_block + line
    assert "nexus.corp.example" in parse(appended, M).outside_names
    assert splice(appended, entries, M) == appended  # the next sync changes nothing
    nl = detect_newline(user) if user else b""  # the one line end splice puts after the user's bytes
    assert with_block.startswith(user + nl + b"#### BEGIN ")
    # The user's bytes, that line end (it ends their last line, or it is the blank line before the block,
    # which stays once lines follow the block: decision 3), then their line, whole.
    assert remove_block(appended, M) == user + nl + line


def dry_run_text(path: Path, entries: list[Entry], rejections: tuple[Rejection, ...] = ()) -> str:
    out = io.StringIO()
    print_dry_run(HostsFile(path), Plan(tuple(entries), rejections, (), len(entries)), out)
    return out.getvalue()


REFUSED = (
    Rejection("tyk/wild-ingress", "*.chart.local", "wildcard", "wildcards cannot be written to a hosts file"),
    Rejection("tyk/other", "chart-dash.local", "conflict", "claimed by tyk/dashboard-ingress"),
)


@pytest.mark.skipif(shutil.which("patch") is None, reason="the patch command is not installed")
@pytest.mark.parametrize(
    ("before", "entries"),
    [
        (USER_FILE, TYK),  # add a block to a file without final newline
        (splice(USER_FILE, TYK, M) + APPENDED.rstrip(b"\n"), TYK[:2]),  # a user line after it, no \n
        (splice(USER_FILE, TYK, M), []),  # remove the block again
        (USER_FILE + b"\n\n" + render_block(TYK, M)[:-1], TYK),  # an earlier version's block
    ],
)
def test_the_dry_run_diff_is_one_patch_applies(tmp_path: Path, before: bytes, entries: list[Entry]) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(before)
    text = dry_run_text(path, entries, REFUSED)
    expected = splice(before, entries, M)
    diff = text[text.index("--- ") :]
    assert "\\ No newline at end of file\n" in diff
    for rejection in REFUSED:  # each refusal on a line of its own
        assert any(line.startswith(f"# refused {rejection.host} ") for line in diff.splitlines())
    proc = subprocess.run(
        ["patch", "--batch", "--output", str(tmp_path / "patched"), str(path)],
        input=diff.encode(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "patched").read_bytes() == expected
    assert path.read_bytes() == before  # the dry run changed nothing
