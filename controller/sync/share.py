"""Fair shares of a total bound: how many units (lines, bytes) of the managed block each object may have.

Max-min fairness (water filling): every object gets what it asks for while that fits; the objects that ask
for more than an equal part of what the others leave share it equally, and the few units that split's
rounding leaves over go one each to the first of them in the given order (oldest first). The result depends
on the demands alone, so it is the same on every node and every restart, and an object that asks for no more
than ``bound / objects`` always gets all of it, whatever the others ask for (docs/architecture.md, decision
11). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from controller.engine.block import _entry_line as entry_line
from controller.engine.entries import Entry
from controller.model import BLOCK_FULL, Rejection, Snapshot

K = TypeVar("K", bound=Hashable)

# The whole block: every name lookup on the machine reads the hosts file line by line, so its size costs
# everyone. 10,000 lines (about 0.5-1 MB) hold hundreds of objects at a few dozen names each; 1 MiB
# bounds lines made long by long names and owners (docs/architecture.md, decision 11).
MAX_BLOCK_LINES = 10_000
MAX_BLOCK_BYTES = 1 << 20


# The bytes of a block line besides its address, hostname and owner: " ", "  # " and the LF.
LINE_EXTRA = len(entry_line(Entry("a.b", "10.0.0.1", "n/o"))) - len("10.0.0.1a.bn/o") + 1


@dataclass(frozen=True)
class Bounds:
    """The block's total bound (--max-block-lines, --max-block-bytes): entry lines, and their bytes with
    LF line ends (the BEGIN/END lines and CR LF line ends add a few bytes)."""

    lines: int = MAX_BLOCK_LINES
    bytes: int = MAX_BLOCK_BYTES


def fair_shares(demands: Mapping[K, int], bound: int, order: Sequence[K]) -> dict[K, int]:
    """Each key's share (at most its demand; all shares together at most ``bound``). ``order`` lists every
    key once: it breaks ties and places the rounding's leftover units."""
    rank = {key: i for i, key in enumerate(order)}
    todo = sorted(demands, key=lambda k: (demands[k], rank[k]))
    shares: dict[K, int] = {}
    remaining = max(bound, 0)
    for i, key in enumerate(todo):
        left = len(todo) - i
        if demands[key] <= remaining // left:
            shares[key] = demands[key]
            remaining -= demands[key]
            continue
        # Every key from here on asks for more than an equal split of what remains: each gets the level.
        level, extra = divmod(remaining, left)
        for j, capped in enumerate(sorted(todo[i:], key=rank.__getitem__)):
            shares[capped] = level + (1 if j < extra else 0)
        break
    return shares


Claims = dict[str, tuple[tuple[str, ...], Snapshot]]


def within_bounds(
    claims: Claims, sharers: Mapping[str, list[Snapshot]], bounds: Bounds, rejections: list[Rejection]
) -> tuple[Claims, int]:
    """The claims that fit the block's bounds, each object within its fair share of lines and of bytes
    (its names in sorted order, up to the first that does not fit); refusals (block-full) for the rest.
    Returns the kept claims and their bytes."""
    # Objects by their age key: hashing a whole Snapshot for every name would double a sync's planning time.
    # The uid last: two objects of one kind and name in different API groups are two objects.
    names: dict[tuple[str, str, str, str, str], list[tuple[str, int, int]]] = {}  # -> (host, lines, bytes)
    owners: dict[tuple[str, str, str, str, str], Snapshot] = {}
    total_lines = total_bytes = 0
    for host, (addresses, snap) in sorted(claims.items()):
        # block.py's line "ADDRESS HOSTNAME  # OWNER" and LF, counted without building 150,000 Entries
        # (all three are ASCII once validated; tests/unit/test_plan.py compares with the rendered block)
        size = sum(len(a) for a in addresses) + len(addresses) * (len(host) + len(snap.owner) + LINE_EXTRA)
        key = (snap.created, snap.namespace, snap.name, snap.kind, snap.uid)
        if key not in owners:
            owners[key], names[key] = snap, []
        names[key].append((host, len(addresses), size))
        total_lines, total_bytes = total_lines + len(addresses), total_bytes + size
    if total_lines <= bounds.lines and total_bytes <= bounds.bytes:
        return claims, total_bytes  # everything fits: the usual case
    objects = sorted(names)
    line_shares = fair_shares({o: sum(n[1] for n in names[o]) for o in objects}, bounds.lines, objects)
    byte_shares = fair_shares({o: sum(n[2] for n in names[o]) for o in objects}, bounds.bytes, objects)
    kept: Claims = {}
    total = 0
    for key in objects:
        snap = owners[key]
        lines = size = 0
        refused: list[str] = []
        for host, host_lines, host_bytes in names[key]:
            fits = lines + host_lines <= line_shares[key] and size + host_bytes <= byte_shares[key]
            if fits and not refused:
                lines, size = lines + host_lines, size + host_bytes
                kept[host] = claims[host]
            else:
                refused.append(host)
        total += size
        if refused:
            message = (
                f"the block's bound ({bounds.lines:,} lines, {bounds.bytes:,} bytes) is shared equally: "
                f"the first {len(names[key]) - len(refused)} names (sorted) fit this object's share; use "
                "fewer names or addresses, or raise --max-block-lines/--max-block-bytes"
            )
            for host in refused:
                for owner in (snap, *sharers.get(host, ())):
                    rejections.append(Rejection(owner.owner, host, BLOCK_FULL, message, owner.uid))
    return kept, total
