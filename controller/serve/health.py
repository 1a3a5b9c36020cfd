"""Liveness and readiness: what /healthz and /readyz answer (docs/architecture.md, decision 12).

Readiness is the first complete listing synced (``ready``) and no blocker: each blocker is a named
:class:`Reason`, with a subject where one reason can hold several times (a watch stream per resource and
namespace), and the message /readyz shows. Components set and clear their own reasons; nobody writes
another's.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass


class Reason(enum.Enum):
    """What keeps the controller from doing its job; the value names it in the debug log and tests."""

    STREAM = "stream"  # a watch stream that fails or is not up yet (controller/cluster/streams.py)
    API_SERVER = "api server"  # requests fail or go unanswered (controller/cluster/apihealth.py)
    OPERATOR = "kopf operator"  # kopf's operator stopped, being restarted (controller/cluster/operate.py)
    LISTING_HOOK = "listing hook"  # no listing ever observed (controller/runner.py)
    WRITE = "hosts file"  # the last write of the hosts file failed (controller/sync/report.py)
    BLOCK = "hosts file block"  # another program removed or changed the block (controller/sync/blockwatch.py)


@dataclass(frozen=True)
class Blocker:
    reason: Reason
    subject: str  # "" unless the reason holds per subject
    message: str  # what /readyz says


class Health:
    """Liveness: the event loop beats. Readiness: ``ready`` (the first complete listing is in the file)
    and no blocker."""

    STALE_AFTER = 60.0

    def __init__(self) -> None:
        self.ready = False
        self._blockers: dict[tuple[Reason, str], str] = {}
        self._beat = time.monotonic()

    def set(self, reason: Reason, message: str, subject: str = "") -> None:
        self._blockers[(reason, subject)] = message

    def clear(self, reason: Reason, subject: str = "") -> None:
        self._blockers.pop((reason, subject), None)

    def message(self, reason: Reason, subject: str = "") -> str | None:
        """The message of this blocker, None when it is not set."""
        return self._blockers.get((reason, subject))

    def blocked_by(self, reason: Reason, subject: str = "") -> bool:
        return (reason, subject) in self._blockers

    def blockers(self) -> list[Blocker]:
        """Every blocker set, ordered by message (the order /readyz shows them in)."""
        found = [Blocker(reason, subject, message) for (reason, subject), message in self._blockers.items()]
        return sorted(found, key=lambda b: b.message)

    @property
    def serving(self) -> bool:
        """What /readyz answers."""
        return self.ready and not self._blockers

    def why_not_ready(self) -> str:
        if not self.ready and not self._blockers:
            return "not ready: the first complete listing is not synced yet"
        return "not ready: " + "; ".join([b.message for b in self.blockers()] or ["first listing not synced"])

    def beat(self) -> None:
        self._beat = time.monotonic()

    @property
    def alive(self) -> bool:
        return time.monotonic() - self._beat < self.STALE_AFTER
