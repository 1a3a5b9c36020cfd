"""The cluster record inside the block: rendered once right after BEGIN, parsed strictly, ignored by name
lookups, repaired like the block's other lines, and never a reason to touch a byte outside the block."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.engine.block import (
    block_names,
    block_record,
    detect_newline,
    parse,
    remove_block,
    render_block,
    splice,
)
from controller.engine.entries import Entry
from controller.engine.hostsfile import HostsFile
from controller.engine.record import ClusterRecord, make_record, parse_line
from tests.unit.engine.test_block_edges import ENTRIES, USER, lines, without_block

M = "TYK-K8S-HOSTS"
REC = ClusterRecord("kind-dev", "https://127.0.0.1:40123", "dev-control-plane")
ENTRY = Entry("a.local", "10.0.0.1", "ns/a")
USER_FILE = b"127.0.0.1 localhost\n# a comment\n"


def test_the_record_is_the_line_right_after_begin():
    block = render_block([ENTRY], M, record=REC)
    assert block.splitlines() == [
        b"#### BEGIN TYK-K8S-HOSTS ####",
        b"# cluster: name=kind-dev server=https://127.0.0.1:40123 node=dev-control-plane",
        b"10.0.0.1 a.local  # ns/a",
        b"#### END TYK-K8S-HOSTS ####",
    ]
    assert (
        render_block([ENTRY], M, b"\r\n", REC)
        .splitlines(keepends=True)[1]
        .endswith(b"node=dev-control-plane\r\n")
    )


def test_only_known_fields_are_written():
    assert ClusterRecord(node="kind-worker").line() == "# cluster: node=kind-worker"
    assert make_record(None, None, None) is None
    # a context name with a space cannot be recorded: left out, the rest stays
    assert make_record("my cluster", "https://10.0.0.1:6443", None) == ClusterRecord(
        server="https://10.0.0.1:6443"
    )
    assert make_record("dev", "not-a-url", "n1") == ClusterRecord(name="dev", node="n1")


@pytest.mark.parametrize(
    "line",
    [
        b"# cluster: name=kind-dev",
        b"# cluster: server=https://127.0.0.1:1 name=kind-dev",  # another order: not what we render
        b"# cluster:  name=kind-dev",
        b"# cluster: name=kind-dev ",
        b"# cluster: name=kind-dev name=other",
        b"# cluster: color=red",
        b"# cluster: name=",
        b"# cluster: server=ftp://x",
        b"#cluster: name=kind-dev",
        b" # cluster: name=kind-dev",
        b"# Cluster: name=kind-dev",
        b"# cluster: name=k\xc3\xa9",
        b"# cluster:",
    ],
)
def test_parsing_is_strict(line):
    expected = ClusterRecord(name="kind-dev") if line == b"# cluster: name=kind-dev" else None
    assert parse_line(line) == expected
    assert parse_line(line + b"\n") == expected and parse_line(line + b"\r\n") == expected


def test_names_and_entries_ignore_the_record():
    content = splice(USER_FILE, [ENTRY], M, REC)
    assert block_names(content, M) == {"a.local"}
    parsed = parse(content, M)
    assert parsed.managed == (ENTRY,) and "kind-dev" not in parsed.outside_names
    assert block_record(content, M) == REC


def test_a_record_elsewhere_is_not_the_blocks():
    content = USER_FILE + b"# cluster: name=mine\n\n" + render_block([ENTRY], M)
    assert block_record(content, M) is None
    inner = render_block([ENTRY], M).replace(b"ns/a\n", b"ns/a\n" + REC.line().encode() + b"\n")
    assert block_record(inner, M) is None  # only right after BEGIN


def test_an_unchanged_cluster_gives_the_same_bytes_and_another_cluster_replaces_the_record():
    once = splice(USER_FILE, [ENTRY], M, REC)
    assert splice(once, [ENTRY], M, REC) == once
    other = ClusterRecord("kind-other", "https://127.0.0.1:50000")
    again = splice(once, [ENTRY], M, other)
    assert block_record(again, M) == other and again.count(b"# cluster:") == 1
    assert remove_block(again, M) == USER_FILE


def test_hostsfile_writes_its_record_and_leaves_an_unchanged_file_alone(tmp_path):
    path = tmp_path / "hosts"
    path.write_bytes(USER_FILE)
    hosts = HostsFile(path, M)
    hosts.record = REC
    assert hosts.sync([ENTRY]).changed
    assert block_record(path.read_bytes(), M) == REC
    assert not hosts.sync([ENTRY]).changed
    assert hosts.cleanup().changed and path.read_bytes() == USER_FILE


def test_a_block_without_end_loses_its_record_line_too():
    ours = render_block([ENTRY], M, record=REC).splitlines(keepends=True)[:-1]  # no END: a crashed writer
    content = USER_FILE + b"".join(ours) + b"user line\n"
    assert remove_block(content, M) == USER_FILE + b"user line\n"


@pytest.mark.parametrize("cut", [1, 5, 11, 20, 45])
def test_a_record_line_cut_short_at_the_end_of_the_file_is_repaired(cut):
    begin = render_block([ENTRY], M, record=REC).splitlines(keepends=True)[0]
    content = USER_FILE + begin + REC.line().encode()[:cut]
    assert remove_block(content, M) == USER_FILE


def test_a_user_comment_after_a_lone_begin_stays():
    content = USER_FILE + b"#### BEGIN TYK-K8S-HOSTS ####\n# cluster: my notes\nuser line\n"
    assert remove_block(content, M) == USER_FILE + b"# cluster: my notes\nuser line\n"


RECORDS = st.builds(
    ClusterRecord,
    st.one_of(st.none(), st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z")),
    st.one_of(st.none(), st.integers(1, 65535).map(lambda p: f"https://127.0.0.1:{p}")),
    st.one_of(st.none(), st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z")),
)


@given(st.one_of(USER, st.binary(max_size=200)), ENTRIES, RECORDS)
def test_insert_then_remove_gives_back_any_user_bytes_with_a_record(user, entries, record):
    user = without_block(user)
    content = splice(user, entries, M, record)
    assert block_record(content, M) == (record or None)
    assert remove_block(content, M) == user


@given(USER, ENTRIES, RECORDS, USER)
def test_a_block_with_a_record_in_the_middle_removes_nothing_else(before, entries, record, after):
    before = lines(before, b"")
    after = without_block(after)
    content = before + render_block(entries, M, detect_newline(before), record) + b"x\n" + after
    assert remove_block(content, M) == before + b"x\n" + after
