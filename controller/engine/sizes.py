"""Sizes in bytes as people write them (``64Mi``, ``128MiB``, ``1048576``) and as messages show them.

Binary units only: ``64M`` or ``64MB`` could mean 10^6 or 2^20, so they are refused with the spelling to use.
Stdlib only, no I/O.
"""

from __future__ import annotations

import re

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"\s*(\d{1,20})\s*(?:([kmgt])i(?:b)?|(b)?)\s*", re.IGNORECASE)
_DECIMAL = re.compile(r"\s*\d{1,20}\s*[kmgt]b?\s*", re.IGNORECASE)
HINT = "give bytes or a binary unit, e.g. 64Mi, 128MiB, 1Gi or 1048576"


def parse_size(text: str) -> int:
    """``"64Mi"`` -> 67108864; ValueError (with the spelling to use) for anything else."""
    match = _SIZE.fullmatch(text)
    if match:
        number, unit, _ = match.groups()
        return int(number) * _UNITS[(unit or "").lower()]
    if _DECIMAL.fullmatch(text):
        raise ValueError(f"{text.strip()!r} is ambiguous (1000 or 1024?): use Ki, Mi, Gi, e.g. 64Mi")
    raise ValueError(f"{text.strip()[:30]!r} is not a size ({HINT})")


def format_size(size: int) -> str:
    """``67108864`` -> ``"64 MiB"``, ``1099511627776`` -> ``"1 TiB"``, ``1500`` -> ``"1500 bytes"``."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            shown = f"{size / factor:.1f}".removesuffix(".0")
            return f"{shown} {unit}"
    return f"{size} bytes"


def size_flag(size: int) -> str:
    """``67108864`` -> ``"64Mi"``: how --help and the banner show a size, in the flag's own syntax."""
    for unit, factor in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
