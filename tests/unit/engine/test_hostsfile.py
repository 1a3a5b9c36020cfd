"""The hosts file engine: block format, every other byte preserved, safe writes (real files, no mocks)."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from controller.engine.block import (
    DEFAULT_MARKER,
    begin_line,
    end_line,
    parse,
    remove_block,
    render_block,
    splice,
    validate_marker,
)
from controller.engine.entries import (
    Entry,
    validate_address,
    validate_hostname,
)
from controller.engine.errors import HostsFileError, InvalidEntryError, InvalidMarkerError
from controller.engine.hostsfile import HostsFile, WriteMode
from tests.helpers import as_nobody

M = DEFAULT_MARKER
BEGIN = b"#### BEGIN TYK-K8S-HOSTS ####"
END = b"#### END TYK-K8S-HOSTS ####"

E1 = Entry("chart-dash.local", "172.18.0.200", "tyk/dashboard-ingress")
E2 = Entry("gw.local", "172.18.0.201", "tyk/gateway")
E3 = Entry("gw.local", "fd00::1", "tyk/gateway")

DOCKER = (
    b"# Added by Docker Desktop\n"
    b"# To allow the same kube context to work on the host and the container:\n"
    b"127.0.0.1 kubernetes.docker.internal\n"
    b"# End of section\n"
)
VAGRANT = b"## vagrant-hostmanager-start id: 1a2b\n192.168.56.10\tweb.vm\n## vagrant-hostmanager-end\n"
HOSTCTL = b"# profile.on dev\n10.0.0.5 api.dev.test\n# end\n"
BASE = b"127.0.0.1\tlocalhost\n::1 localhost ip6-localhost ip6-loopback\n"


def block(*lines: bytes, nl: bytes = b"\n") -> bytes:
    return nl.join([BEGIN, *lines, END]) + nl


# ------------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("marker", ["TYK-K8S-HOSTS", "my hosts", "x", "ÄÖ-MARK"])
def test_valid_markers(marker: str) -> None:
    assert validate_marker(marker) == marker


@pytest.mark.parametrize("marker", ["", "A\nB", "A\rB", "##", "A#B", " A", "A ", "A\tB", "\x00", "X" * 201])
def test_invalid_markers(marker: str) -> None:
    with pytest.raises(InvalidMarkerError, match="invalid marker"):
        validate_marker(marker)
    with pytest.raises(InvalidMarkerError):
        HostsFile("/tmp/x", marker=marker)


def test_marker_lines() -> None:
    assert begin_line(M) == "#### BEGIN TYK-K8S-HOSTS ####"
    assert end_line("X") == "#### END X ####"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("chart-dash.local", "chart-dash.local"), ("A.Example.COM", "a.example.com"), ("localhost", "localhost"),
     ("x" * 63 + ".local", "x" * 63 + ".local"), ("1x.local", "1x.local"), ("a.b-c.d", "a.b-c.d")],
)  # fmt: skip
def test_valid_hostnames(name: str, expected: str) -> None:
    assert validate_hostname(name) == expected


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("*.local", "wildcard"),
        ("", "empty"),
        ("a..b", "empty label"),
        ("foo.local.", "dot"),
        ("x" * 64 + ".local", "at most 63"),
        (".".join(["abcdefgh"] * 29), "at most 253"),
        ("under_score.local", "characters"),
        ("-lead.local", "starts or ends"),
        ("trail-.local", "starts or ends"),
        ("10.0.0.1", "IP address"),
        ("bad name.local", "characters"),
        ("bücher.local", "non-ASCII"),
    ],
)
def test_invalid_hostnames_name_the_value_and_reason(name: str, why: str) -> None:
    with pytest.raises(InvalidEntryError) as err:
        validate_hostname(name)
    assert repr(name) in str(err.value) and why in str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, HostsFileError)


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("0:0::1", "::1"),
        ("FD00:0::A", "fd00::a"),
        ("::ffff:1.2.3.4", "::ffff:102:304"),
    ],
)
def test_addresses_are_normalised(raw: str, norm: str) -> None:
    assert validate_address(raw) == norm


@pytest.mark.parametrize(
    "raw", ["", "10.0.0", "10.0.0.256", "fe80::1%eth0", " 10.0.0.1", "host.local", "1.2.3.4/32"]
)
def test_invalid_addresses(raw: str) -> None:
    with pytest.raises(InvalidEntryError, match="invalid address"):
        validate_address(raw)


def test_entry_validates_and_normalises() -> None:
    assert Entry("A.Local", "0::1", "ns/n") == Entry("a.local", "::1", "ns/n")
    with pytest.raises(InvalidEntryError, match=r"'\*\.x\.local'"):
        Entry("*.x.local", "10.0.0.1", "ns/n")
    with pytest.raises(InvalidEntryError, match="invalid owner"):
        Entry("a.local", "10.0.0.1", "has space/n")
    with pytest.raises(InvalidEntryError, match="invalid owner"):
        Entry("a.local", "10.0.0.1", "ns/n\n10.6.6.6 evil")


# ---------------------------------------------------------------------------------------------------- render


def test_render_format_and_order() -> None:
    entries = [
        Entry("b.local", "10.0.0.10", "ns/b"),
        Entry("b.local", "::1", "ns/b"),
        Entry("b.local", "10.0.0.2", "ns/b"),
        Entry("a.local", "172.18.0.200", "tyk/a"),
    ]
    assert render_block(entries, M) == block(
        b"172.18.0.200 a.local  # tyk/a",
        b"10.0.0.2 b.local  # ns/b",
        b"10.0.0.10 b.local  # ns/b",  # numeric, not text, order
        b"::1 b.local  # ns/b",  # IPv4 before IPv6
    )


def test_render_collapses_duplicates_to_first_owner() -> None:
    entries = [Entry("a.local", "10.0.0.1", "z/z"), Entry("a.local", "10.0.0.1", "a/a")]
    assert render_block(entries, M) == block(b"10.0.0.1 a.local  # a/a")


def test_render_crlf_and_custom_marker() -> None:
    out = render_block([E1], "MINE", b"\r\n")
    line = b"172.18.0.200 chart-dash.local  # tyk/dashboard-ingress"
    assert out == b"#### BEGIN MINE ####\r\n" + line + b"\r\n#### END MINE ####\r\n"


def test_render_rejects_non_entries() -> None:
    with pytest.raises(InvalidEntryError):
        render_block([("a.local", "10.0.0.1", "ns/n")], M)  # type: ignore[list-item]


# ---------------------------------------------------------------------------------------------------- splice


def test_append_after_one_blank_line() -> None:
    assert splice(BASE, [E1], M) == BASE + b"\n" + block(
        b"172.18.0.200 chart-dash.local  # tyk/dashboard-ingress"
    )


def test_empty_file_gets_only_the_block() -> None:
    assert splice(b"", [E1], M) == render_block([E1], M)


def test_replace_in_place_keeps_position_and_following_lines() -> None:
    content = BASE + block(b"10.9.9.9 old.local  # ns/old") + b"# user line after\n10.1.1.1 mine.local\n"
    out = splice(content, [E2], M)
    assert (
        out
        == BASE + block(b"172.18.0.201 gw.local  # tyk/gateway") + b"# user line after\n10.1.1.1 mine.local\n"
    )


def test_crlf_file_gets_crlf_block_and_keeps_its_bytes() -> None:
    content = b"127.0.0.1 localhost\r\n# comment\r\n"
    out = splice(content, [E1], M)
    assert out.startswith(content + b"\r\n" + BEGIN + b"\r\n")
    assert out.count(b"\r\n") == out.count(b"\n")
    assert remove_block(out, M) == content


def test_missing_final_newline_is_given_back_and_the_block_ends_with_one() -> None:
    content = b"127.0.0.1 localhost"
    out = splice(content, [E1], M)
    # The line end after the user's last line is ours: a tab after the BEGIN marker says so.
    assert out == content + b"\n" + BEGIN + b"\t\n" + render_block([E1], M).split(b"\n", 1)[1]
    assert splice(out, [E1, E2], M).endswith(b"gateway\n" + END + b"\n")
    assert splice(out, [E1, E2], M).count(BEGIN + b"\t\n") == 1  # kept when the block is rewritten
    assert remove_block(out, M) == content
    assert remove_block(splice(out, [E1, E2], M), M) == content


def test_non_utf8_tabs_and_other_tools_blocks_survive() -> None:
    content = b"\xff\xfe latin-1 \xe9t\xe9\n10.0.0.1\tfoo\tbar # \x80\n" + DOCKER + VAGRANT + HOSTCTL
    out = splice(content, [E1, E3], M)
    assert out.startswith(content)
    assert remove_block(out, M) == content
    assert remove_block(splice(out, [E2], M), M) == content


def test_block_between_other_tools_blocks_is_replaced_in_place() -> None:
    content = DOCKER + b"\n" + block(b"10.0.0.9 x.local  # a/b") + VAGRANT + HOSTCTL
    out = splice(content, [E2], M)
    assert out == DOCKER + b"\n" + block(b"172.18.0.201 gw.local  # tyk/gateway") + VAGRANT + HOSTCTL


def test_markers_in_comments_or_other_text_are_not_markers() -> None:
    content = (
        b"# " + BEGIN + b"\n"
        b"10.0.0.1 a.local # " + END + b"\n"
        b"#### BEGIN TYK-K8S-HOSTS-2 ####\n"
        b"#### BEGIN tyk-k8s-hosts ####\n"
        b"x" + BEGIN + b"\n"
    )  # fmt: skip
    assert not parse(content, M).has_block
    assert remove_block(content, M) is content
    out = splice(content, [E1], M)
    assert out.startswith(content) and out.count(BEGIN) == content.count(BEGIN) + 1


def test_markers_match_as_trimmed_whole_lines() -> None:
    content = BASE + b"  \t" + BEGIN + b" \r\n10.0.0.9 x.local  # a/b\n\t" + END + b"  \n# after\n"
    assert parse(content, M).has_block
    assert splice(content, [E2], M) == BASE + block(b"172.18.0.201 gw.local  # tyk/gateway") + b"# after\n"


def test_other_markers_are_left_alone() -> None:
    theirs = b"#### BEGIN OTHER ####\n10.0.0.7 other.local  # x/y\n#### END OTHER ####\n"
    content = BASE + theirs
    out = splice(content, [E1], M)
    assert out.startswith(content)
    assert splice(out, [E2], "OTHER").startswith(BASE + b"#### BEGIN OTHER ####\n172.18.0.201 gw.local")


def test_duplicate_blocks_collapse_to_the_first_position() -> None:
    content = (
        b"a.head\n"
        + block(b"10.0.0.1 a.local  # n/a")
        + b"middle\n"
        + block(b"10.0.0.2 b.local  # n/b")
        + b"tail\n"
    )
    out = splice(content, [E1], M)
    assert out == b"a.head\n" + render_block([E1], M) + b"middle\ntail\n"
    assert remove_block(content, M) == b"a.head\nmiddle\ntail\n"


def test_unterminated_block_is_repaired_without_eating_user_lines() -> None:
    content = (
        BASE
        + b"\n"
        + BEGIN
        + b"\n10.0.0.1 a.local  # n/a\n10.0.0.2 b.local  # n/b\n10.3.3.3 user.local\n# mine\n"
    )
    out = splice(content, [E1], M)
    assert out == BASE + b"\n" + render_block([E1], M) + b"10.3.3.3 user.local\n# mine\n"
    # The block is not at the end: the blank line before it may be the user's, so it stays.
    assert remove_block(content, M) == BASE + b"\n10.3.3.3 user.local\n# mine\n"


def test_unterminated_block_cut_mid_line_at_end_of_file() -> None:
    for cut in (
        b"10.0.0.2 b.lo",
        b"10.0.0.2",
        b"10.0.0.2 b.local  # n/",
        b"#### EN",
        b"10.0.0.2 b.local  # n/b\r",
        b"10.0.0.2 b.local  # n/b",
    ):
        content = BASE + b"\n" + BEGIN + b"\n10.0.0.1 a.local  # n/a\n" + cut
        assert splice(content, [E1], M) == BASE + b"\n" + render_block([E1], M), cut
        assert remove_block(content, M) == BASE, cut


def test_unterminated_block_followed_by_a_complete_one() -> None:
    content = BEGIN + b"\n10.0.0.1 a.local  # n/a\n# user\n" + block(b"10.0.0.2 b.local  # n/b")
    assert splice(content, [E1], M) == render_block([E1], M) + b"# user\n"


def test_stray_end_lines_are_not_touched_but_repeated_ends_are_absorbed() -> None:
    stray = END + b"\n# user\n"
    assert remove_block(stray, M) is stray
    content = BASE + block(b"10.0.0.1 a.local  # n/a") + END + b"\n" + END + b"\n# after\n"
    assert splice(content, [E1], M) == BASE + render_block([E1], M) + b"# after\n"


def test_no_entries_removes_the_block_and_never_writes_an_empty_one() -> None:
    content = splice(BASE, [E1], M)
    assert splice(content, [], M) == BASE
    assert splice(BASE, [], M) is BASE


def test_remove_block_takes_only_the_blank_line_it_added() -> None:
    content = BASE + b"\n\n" + block(b"10.0.0.1 a.local  # n/a")  # the user had a blank line too
    assert remove_block(content, M) == BASE + b"\n"
    assert remove_block(BASE + block(b"10.0.0.1 a.local  # n/a"), M) == BASE


# ----------------------------------------------------------------------------------------------------- parse


def test_parse_reports_managed_entries_outside_names_and_newline() -> None:
    content = (
        BASE + b"10.0.0.5 Mine.Local alias.local  # comment words\n# 10.0.0.6 commented.local\n" + DOCKER
    )
    content = splice(content, [E1, E2, E3], M)
    parsed = parse(content, M)
    assert parsed.has_block and parsed.newline == b"\n"
    assert parsed.managed == (E1, E2, E3)
    expected = {"localhost", "ip6-localhost", "ip6-loopback", "mine.local", "alias.local"}
    assert parsed.outside_names == expected | {"kubernetes.docker.internal"}
    assert parse(content.replace(b"\n", b"\r\n"), M).newline == b"\r\n"
    assert not parse(b"", M).has_block and parse(b"", M).newline == b"\n"


# ------------------------------------------------------------------------------------------ property tests

LINE_ENDINGS = st.sampled_from([b"\n", b"\r\n", b"\r", b""])
TRICKY = st.sampled_from([
    b"# " + BEGIN, b"#" + END + b"x", BEGIN + b" trailing", b"10.0.0.1 a.local # " + BEGIN,
    b"#### BEGIN OTHER ####", b"#### END OTHER ####", END, DOCKER, VAGRANT, HOSTCTL, b"\t", b"   ", b"",
    b"127.0.0.1 localhost", b"10.0.0.1 a.local  # ns/a",
])  # fmt: skip
LINE_TEXT = st.one_of(
    TRICKY,
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass").replace(b"\n", b"")),
)
CONTENT = st.lists(st.tuples(LINE_TEXT, LINE_ENDINGS), max_size=12).map(
    lambda ls: b"".join(a + b for a, b in ls)
)
LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?\Z")
HOSTNAME = st.lists(LABEL, min_size=1, max_size=3).map(lambda ls: ".".join([*ls, "local"]))
ENTRY = st.builds(Entry, HOSTNAME, st.ip_addresses().map(str), st.sampled_from(["ns/a", "ns/b", "tyk/gw"]))
ENTRIES = st.lists(ENTRY, max_size=8)


def clean(content: bytes) -> bytes:
    """Content without a whole-line BEGIN marker (which would make it contain a block already)."""
    assume(not parse(content, M).has_block)
    return content


@given(CONTENT, ENTRIES)
def test_splice_then_remove_gives_back_the_original(content: bytes, entries: list[Entry]) -> None:
    content = clean(content)
    out = splice(content, entries, M)
    assert remove_block(out, M) == content
    assert parse(out, M).outside_names == parse(content, M).outside_names


@given(CONTENT, ENTRIES)
def test_splice_is_idempotent(content: bytes, entries: list[Entry]) -> None:
    once = splice(clean(content), entries, M)
    assert splice(once, entries, M) == once
    assert set(parse(once, M).managed) <= set(entries)


@given(ENTRIES, st.randoms(use_true_random=False))
def test_render_is_order_independent(entries: list[Entry], rnd) -> None:
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    assert render_block(shuffled, M) == render_block(entries, M)


@given(CONTENT, ENTRIES, ENTRIES)
def test_outside_bytes_never_change_across_entry_sets(
    content: bytes, first: list[Entry], second: list[Entry]
) -> None:
    content = clean(content)
    via_first = splice(splice(content, first, M), second, M)
    assert via_first == splice(content, second, M) or not first or not second
    assert remove_block(via_first, M) == content


@given(CONTENT, ENTRIES, CONTENT)
def test_block_in_the_middle_keeps_the_lines_around_it(
    before: bytes, entries: list[Entry], after: bytes
) -> None:
    assume(entries)
    before = clean(before if before.endswith(b"\n") or not before else before + b"\n")
    after = clean(after)
    assume(after.split(b"\n", 1)[0].strip() != END)  # a repeated END line right after ours is absorbed
    content = splice(before, entries, M) + after
    assume(parse(content, M).has_block)
    for other in ([], [E1], entries[::-1]):
        out = splice(content, other, M)
        assert out.startswith(before) and out.endswith(after)


# -------------------------------------------------------------------------------------------- HostsFile I/O


def test_sync_creates_a_missing_file_0644_and_logs(tmp_path: Path, caplog) -> None:
    path = tmp_path / "hosts"
    old = os.umask(0o077)
    try:
        with caplog.at_level(logging.INFO, logger="controller.engine.hostsfile"):
            result = HostsFile(path).sync([E1])
    finally:
        os.umask(old)
    assert result.changed and path.read_bytes() == render_block([E1], M)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert "created missing hosts file" in caplog.text


def test_missing_file_without_entries_is_not_created(tmp_path: Path) -> None:
    hosts = HostsFile(tmp_path / "hosts")
    assert hosts.read() == b"" and not hosts.sync([]).changed and not hosts.cleanup().changed
    assert not (tmp_path / "hosts").exists()


@pytest.mark.parametrize("mode", ["auto", "rename", "inplace"])
def test_noop_sync_keeps_inode_and_mtime(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(BASE)
    hosts = HostsFile(path, mode=mode)
    hosts.sync([E1, E2])
    before = path.stat()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns - 10**9))  # an old mtime, to be sure
    before = path.stat()
    result = hosts.sync([E2, E1])
    after = path.stat()
    assert not result.changed and result.mode is None and result.bytes_written == 0
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert result.inode == after.st_ino


def test_cleanup_without_block_does_not_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(BASE)
    os.utime(path, ns=(0, 10**18))
    before = path.stat()
    assert not HostsFile(path).cleanup().changed
    assert path.stat().st_mtime_ns == before.st_mtime_ns and path.read_bytes() == BASE


@pytest.mark.parametrize("mode", ["rename", "inplace"])
def test_sync_and_cleanup_round_trip(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(BASE + DOCKER)
    hosts = HostsFile(path, mode=WriteMode(mode))
    first = hosts.sync([E1])
    assert first.changed and first.mode == mode and not first.stale
    assert hosts.parse().managed == (E1,)
    assert hosts.sync([E1, E2, E3]).changed
    assert hosts.preview([E2]) == (path.read_bytes(), splice(path.read_bytes(), [E2], M))
    assert hosts.cleanup().changed
    assert path.read_bytes() == BASE + DOCKER


def test_rename_replaces_inode_inplace_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(BASE)
    ino = path.stat().st_ino
    assert HostsFile(path, mode="inplace").sync([E1]).inode == ino == path.stat().st_ino
    result = HostsFile(path, mode="rename").sync([E2])
    assert result.inode == path.stat().st_ino != ino


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_rename_keeps_mode_and_owner(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(BASE)
    os.chmod(path, 0o640)
    os.chown(path, 1234, 5678)
    HostsFile(path, mode="rename").sync([E1])
    st_ = path.stat()
    assert (stat.S_IMODE(st_.st_mode), st_.st_uid, st_.st_gid) == (0o640, 1234, 5678)
    assert [p.name for p in tmp_path.iterdir()] == ["hosts"]  # no temp file left


def test_symlinked_path_writes_the_target_and_stays_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "private" / "hosts"
    real.parent.mkdir()
    real.write_bytes(BASE)
    link = tmp_path / "hosts"
    link.symlink_to(real)
    for mode in ("rename", "inplace", "auto"):
        HostsFile(link, mode=mode).sync([E1] if mode != "inplace" else [E2])
        assert link.is_symlink() and os.readlink(link) == str(real)
        assert real.read_bytes() == link.read_bytes() != BASE
    HostsFile(link).cleanup()
    assert link.is_symlink() and real.read_bytes() == BASE
    assert sorted(p.name for p in real.parent.iterdir()) == ["hosts"]


def test_leftover_temp_files_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(BASE)
    (tmp_path / ".hosts.abc123.k8s-hosts-controller.tmp").write_bytes(b"half")
    (tmp_path / "unrelated.tmp").write_bytes(b"keep")
    HostsFile(path, mode="rename").sync([E1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts", "unrelated.tmp"]


def test_inplace_with_user_lines_after_the_block(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    after = b"# added by the user after our block\n10.9.9.9 mine.local"
    path.write_bytes(splice(BASE, [E1, E2, E3], M) + after)
    hosts = HostsFile(path, mode="inplace")
    for entries in ([E1], [E1, E2, E3], [E3], []):
        hosts.sync(entries)
        # Removing a block that no longer ends the file keeps the blank line before it (it may be the user's).
        expected = BASE + b"\n" + render_block(entries, M) + after if entries else BASE + b"\n" + after
        assert path.read_bytes() == expected
    assert path.stat().st_ino == hosts.sync([]).inode


def test_bad_write_mode(tmp_path: Path) -> None:
    with pytest.raises(HostsFileError, match="unknown write mode 'copy'"):
        HostsFile(tmp_path / "h", mode="copy")


def one_line(err: pytest.ExceptionInfo[HostsFileError], path: Path, remedy: str) -> None:
    text = str(err.value)
    assert "\n" not in text and str(path) in text and remedy in text, text


def test_error_path_is_a_directory(tmp_path: Path) -> None:
    for call in (
        lambda h: h.sync([E1]),
        lambda h: h.check_writable(),
        lambda h: h.read(),
        lambda h: h.cleanup(),
    ):
        with pytest.raises(HostsFileError) as err:
            call(HostsFile(tmp_path))
        one_line(err, tmp_path, "is a directory")


def test_error_missing_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "hosts"
    for call in (lambda h: h.sync([E1]), lambda h: h.check_writable()):
        with pytest.raises(HostsFileError) as err:
            call(HostsFile(path))
        one_line(err, path, "does not exist")
    HostsFile(tmp_path / "hosts").check_writable()  # a missing file in an existing directory is fine


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to an unprivileged user")
def test_error_permission_denied() -> None:
    # tmp_path lives under a 0700 directory; this test needs one that an unprivileged user can enter.
    directory = Path(tempfile.mkdtemp(prefix="hostsfile-perm-"))
    try:
        directory.chmod(0o755)
        path = directory / "hosts"
        content = splice(BASE, [E1], M)
        path.write_bytes(content)
        hosts = HostsFile(path)
        outcomes = as_nobody([hosts.check_writable, lambda: hosts.sync([E2]), hosts.cleanup, hosts.read])
        for line in outcomes[:3]:
            assert str(path) in line and "permission denied" in line, line
            assert "sudo -E" in line and "--hosts-file" in line, line
        assert outcomes[3:] == ["no error"]  # reading a 0644 file is allowed
        assert as_nobody([lambda: hosts.sync([E1])]) == ["no error"]  # nothing to change: no write needed
        assert path.read_bytes() == content
    finally:
        shutil.rmtree(directory)


# ---------------------------------------------------------------------------------------- real bind mount

BIND_SCRIPT = r"""
import errno, json, os, subprocess, sys
from controller.engine.block import render_block, DEFAULT_MARKER
from controller.engine.entries import Entry
from controller.engine.errors import HostsFileError
from controller.engine.hostsfile import HostsFile
d = sys.argv[1]
src, dst, ro = (os.path.join(d, n) for n in ("host-hosts", "container-hosts", "ro-hosts"))
out = {}
def mount(*args):
    p = subprocess.run(["mount", *args], capture_output=True, text=True)
    if p.returncode:
        print(json.dumps({"skip": "mount " + " ".join(args) + ": " + p.stderr.strip()})); sys.exit(0)
mount("--make-rprivate", "/")
mount("--bind", src, dst)
tmp = os.path.join(d, "tmp")
open(tmp, "wb").write(b"x")
try:
    os.rename(tmp, dst)
    out["rename_errno"] = 0
except OSError as e:
    out["rename_errno"] = e.errno
e1 = Entry("chart-dash.local", "172.18.0.200", "tyk/dashboard-ingress")
e2 = Entry("gw.local", "172.18.0.201", "tyk/gateway")
try:
    HostsFile(dst, mode="rename").sync([e1])
    out["forced_rename"] = "no error"
except HostsFileError as e:
    out["forced_rename"] = str(e)
h = HostsFile(dst, mode="auto")
r = h.sync([e1, e2])
out["auto"] = [r.changed, r.mode, r.stale, r.inode == os.stat(src).st_ino]
out["dst_content"] = open(dst, "rb").read().decode()
out["src_content"] = open(src, "rb").read().decode()
r = h.sync([e2])
out["second"] = [r.changed, r.mode]
out["leftover"] = sorted(n for n in os.listdir(d) if n.endswith(".tmp"))
# The host replaces its file by rename: the container's mount keeps the old, now unlinked, inode.
new = os.path.join(d, "new-hosts")
open(new, "wb").write(b"127.0.0.1 localhost\n")
os.rename(new, src)
r = h.sync([e1])
out["stale"] = [r.changed, r.mode, r.stale]
# A read-only bind mount of a single file.
mount("--bind", src, ro)
mount("-o", "remount,bind,ro", ro)
for name, call in (("ro_check", HostsFile(ro).check_writable), ("ro_sync", lambda: HostsFile(ro).sync([e1]))):
    try:
        call()
        out[name] = "no error"
    except HostsFileError as e:
        out[name] = str(e)
print(json.dumps(out))
"""


def test_real_bind_mount_falls_back_to_in_place(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"bind mounts need root; running as uid {os.geteuid()}")
    if not shutil.which("unshare") or not shutil.which("mount"):
        pytest.skip("unshare or mount not installed")
    base = b"127.0.0.1 localhost\n# the host's own lines\n"
    for name in ("host-hosts", "container-hosts", "ro-hosts"):
        (tmp_path / name).write_bytes(base if name == "host-hosts" else b"")
    script = tmp_path / "bind.py"
    script.write_text(BIND_SCRIPT)
    proc = subprocess.run(["unshare", "-m", sys.executable, str(script), str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    if proc.returncode and "unshare" in proc.stderr:
        pytest.skip(f"unshare -m is not allowed here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    if "skip" in out:
        pytest.skip(f"mounts are forbidden here: {out['skip']}")
    expected = base + b"\n" + render_block([E1, E2], M)
    assert out["rename_errno"] == errno.EBUSY
    assert "cannot replace the file by rename" in out["forced_rename"]
    assert out["auto"] == [True, "inplace", False, True]
    assert out["dst_content"].encode() == out["src_content"].encode() == expected
    assert out["second"] == [True, "inplace"]
    assert out["leftover"] == []
    assert out["stale"] == [True, "inplace", True]
    assert "read-only file system" in out["ro_check"] and "ro-hosts" in out["ro_check"]
    assert "read-only file system" in out["ro_sync"]
    # The host's replacement file is untouched by the container's write.
    assert (tmp_path / "host-hosts").read_bytes() == b"127.0.0.1 localhost\n"
