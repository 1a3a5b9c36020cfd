"""The undo record of an in-place write, as pure bytes: every state a killed writer can leave is put back
exactly, and nothing else is ever taken for a record (property tests)."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from controller.engine.undo import record, recover

M = "TYK-K8S-HOSTS"
PIECES = st.sampled_from(
    [
        b"\n",
        b"\r\n",
        b"#",
        b"#|",
        b" ",
        b"10.0.0.1 a.local",
        b"#### UNDO TYK-K8S-HOSTS 0 0 ",
        b"0" * 64,
        b" ####",
    ]
)
CONTENT = st.lists(st.one_of(PIECES, st.binary(max_size=20)), max_size=20).map(b"".join)


def states(old: bytes, new: bytes, start: int):
    """Every file a writer killed between or in the middle of its calls leaves: the record appended up to
    any byte, then the overwrite up to any byte, then the truncate."""
    undo, blank_until = record(old, start, len(new), M)
    for cut in range(len(undo) + 1):
        yield "append", old + undo[:cut]
    full = old + undo
    write = new[start:] + b"\n" * (blank_until - len(new))
    for cut in range(len(write) + 1):
        yield "overwrite", full[:start] + write[:cut] + full[start + cut :]


@given(CONTENT, CONTENT, st.data())
def test_every_state_of_a_killed_write_is_put_back(old: bytes, new_tail: bytes, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(old)))
    new = old[:start] + new_tail
    assume(old and new != old)
    undo, _ = record(old, start, len(new), M)
    header_done = len(b"\n" if not old.endswith(b"\n") else b"") + undo.index(b" ####\n") + len(b" ####\n")
    for step, state in states(old, new, start):
        if step == "append" and len(state) - len(old) < header_done:
            continue  # the record's first line cut short: a kill inside one short write (decision 4)
        assert recover(state, M) == old, (step, len(state))


@given(CONTENT, CONTENT, st.data())
def test_a_record_ends_the_users_last_line_and_is_only_comments(
    old: bytes, new_tail: bytes, data: st.DataObject
) -> None:
    start = data.draw(st.integers(0, len(old)))
    new = old[:start] + new_tail
    assume(old and new != old)
    undo, blank_until = record(old, start, len(new), M)
    assert (old + undo).endswith(b"\n")
    for line in (b"x" + undo).split(b"\n")[1:]:  # the first piece ends the user's last line
        assert not line or line.startswith(b"#"), line
    # After the overwrite nothing but blank lines and comments follow the new content, whose last line
    # (if it had no newline) is ended by a newline of ours.
    full = old + undo
    written = full[:start] + new[start:] + b"\n" * (blank_until - len(new)) + full[blank_until:]
    assert written.startswith(new)
    rest = written[len(new) :]
    assert rest[:1] == b"\n" or new.endswith(b"\n") or not rest
    for line in rest.split(b"\n")[1:]:
        assert not line or line.startswith(b"#"), line


@given(CONTENT)
def test_content_without_a_record_is_never_taken_for_one(content: bytes) -> None:
    assert recover(content, M) is None


@given(CONTENT, CONTENT)
def test_a_stale_record_of_other_bytes_is_not_taken_for_ours(user: bytes, other: bytes) -> None:
    """A record copied into a file (by a backup, by hand) that does not describe the bytes before it."""
    assume(not (user + b"\n").startswith(other))
    undo, _ = record(other + b"x", len(other), len(other), M)
    content = user + b"\n" + undo + b"10.1.1.1 mine.local\n"
    assert recover(content, M) is None


@given(CONTENT, CONTENT, st.data())
def test_lines_appended_after_a_whole_record_are_kept_as_lines_of_their_own(
    old: bytes, new_tail: bytes, data: st.DataObject
) -> None:
    """The writer was killed, then the user appended a line (`tee -a`) before the next sync."""
    start = data.draw(st.integers(0, len(old)))
    new = old[:start] + new_tail
    assume(old and new != old)
    line = b"10.0.0.9 nexus.corp.example\n"
    undo, _ = record(old, start, len(new), M)
    expected = old + (b"" if old.endswith(b"\n") else b"\n") + line
    for step, state in states(old, new, start):
        if step == "append" and len(state) - len(old) < len(undo):
            continue  # a record cut short: the appended line would be glued onto our comment line
        assert recover(state + line, M) == expected, (step, len(state))


def test_another_markers_record_is_not_ours() -> None:
    old = b"127.0.0.1 localhost\n"
    undo, _ = record(old, 5, 3, "OTHER")
    assert recover(old + undo, M) is None and recover(old + undo, "OTHER") == old
