"""The one duration syntax of the command line, `wait --timeout` and the scripts: plain seconds (``90``,
``0.5``) or unit parts in the order h, m, s, ms (``500ms``, ``90s``, ``2m``, ``1h``, ``1h30m``, ``1m30.5s``;
``1m30`` is 90 s).

scripts/hosts-sync.sh and the examples parse the same forms in bash (whole numbers per part there); tests
check both against this module. Stdlib only.
"""

from __future__ import annotations

import re

EXAMPLES = "90, 500ms, 90s, 2m, 1h, 1h30m"

_NUMBER = r"(\d+(?:\.\d+)?)"
# "1m30" is 90 s (as `wait` always took it): a bare number only after minutes, never after hours ("1h30").
_PARTS = re.compile(rf"(?:{_NUMBER}h)?(?:{_NUMBER}m(?!s))?(?:{_NUMBER}s|(?<=m){_NUMBER}$)?(?:{_NUMBER}ms)?")
_SCALE = (3600.0, 60.0, 1.0, 1.0, 0.001)


def parse_duration(text: str) -> float:
    """Seconds; raises ValueError naming the forms. A plain number is taken as float() reads it (``nan``,
    ``inf`` and negatives too: each setting's range refuses them with its own message)."""
    bare = text.strip()
    try:
        return float(bare)
    except ValueError:
        pass
    match = _PARTS.fullmatch(bare)
    if not bare or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration (give seconds or e.g. {EXAMPLES})")
    return sum(float(part) * scale for part, scale in zip(match.groups(), _SCALE, strict=True) if part)
