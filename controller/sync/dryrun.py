"""--dry-run: print the block and a diff of the hosts file instead of writing it.

The output is for a terminal or a pipe of any encoding: what the output's encoding cannot show is escaped
(``\\xfc``), never an error. A reader that goes away (``| head``) ends the run quietly with the status of a
program killed by SIGPIPE, as other tools do in a pipeline.
"""

from __future__ import annotations

import difflib
import os
import signal
import sys
import time
from typing import TextIO

from controller.engine.block import render_block
from controller.engine.hostsfile import HostsFile
from controller.engine.printable import printable
from controller.sync.plan import Plan

EXIT_OUTPUT_CLOSED = 128 + signal.SIGPIPE  # 141: what a shell reports for a writer whose reader left

_output_closed = False


def output_closed() -> bool:
    """Whether a dry run found its output closed by the reader (the command line then exits 141)."""
    return _output_closed


def print_dry_run(hosts: HostsFile, result_plan: Plan, out: TextIO | None = None) -> None:
    """The block, a unified diff of the file (or "already up to date"), and one comment line per refusal."""
    current, new = hosts.preview(result_plan.entries)
    out = out or sys.stdout
    parts = [
        render_block(result_plan.entries, hosts.marker, record=hosts.record).decode(errors="backslashreplace")
    ]
    diff = difflib.unified_diff(
        _lines(current), _lines(new), fromfile=str(hosts.path), tofile=f"{hosts.path} (after sync)"
    )
    text = "".join(_marked(line) for line in diff)
    parts.append(text if text else f"# {hosts.path} is already up to date\n")
    for r in result_plan.rejections:  # escaped: a newline in a name must not start a line of its own
        parts.append(f"# refused {printable(r.host)} from {r.owner}: {printable(r.message)} [{r.reason}]\n")
    try:
        _write_all("".join(parts), out)
    except BrokenPipeError:
        _reader_left(out)


def _lines(content: bytes) -> list[str]:
    """The file's lines as `patch` sees them: split at LF only (str.splitlines also splits at form feeds,
    lone CRs, ...), each with its line end; the last one without, when the file ends without a newline."""
    text = content.decode(errors="backslashreplace")
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def _marked(line: str) -> str:
    """A diff line; the last line of a file without a final newline gets the unified diff's marker, so that
    the diff stays valid and the next line (a hunk, a `# refused` comment) starts a line of its own."""
    return line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"


def _write_all(text: str, out: TextIO) -> None:
    """`text` with what the output's encoding cannot show escaped (an ASCII stdout and a name like bücher),
    written whole: unbuffered (PYTHONUNBUFFERED, as in the image), a text stream drops the rest of a partial
    write, and a reader that left would go unnoticed."""
    encoding = getattr(out, "encoding", None) or "utf-8"
    data = text.encode(encoding, errors="backslashreplace")
    binary = getattr(out, "buffer", None)
    if binary is None:  # a StringIO
        out.write(data.decode(encoding))
        return
    out.flush()
    view = memoryview(data)
    while view:
        written = binary.write(view)
        if written is None:  # a non-blocking stdout that is full: let the reader catch up
            time.sleep(0.01)
            continue
        view = view[written:]
    binary.flush()


def _reader_left(out: TextIO) -> None:
    global _output_closed
    _output_closed = True
    try:
        fileno = out.fileno()
    except (OSError, ValueError):  # not a file: nothing is flushed to it at exit
        return
    # What is still buffered would fail again when Python flushes at exit ("Exception ignored ..."):
    # send it nowhere instead, as the reader wants nothing more.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)
