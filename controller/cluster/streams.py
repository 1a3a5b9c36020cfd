"""Are the watch streams working? Readiness must say no while one is not (docs/architecture.md, decision 12).

A token that may list but not watch gets the first listing written and then sees no change ever again,
while kopf retries the watch request forever. The listing hook (controller/cluster/listing.py) reports how
every list and watch request of a watched scope ends: failed (with the error) or answered. Each scope counts
as a readiness blocker from the start until its watch request has been answered once, and again while a list
or watch request keeps failing; the first failure of an episode is logged once, naming the verb, the
resource and the namespace, and so is the recovery. No kopf here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from controller.engine.printable import printable
from controller.model import ResourceId
from controller.serve.health import Health, Reason

log = logging.getLogger(__name__)

# (resource, namespace or None for cluster-wide); messages name the resource by its plural
Stream = tuple[ResourceId, str | None]


def _where(namespace: str | None) -> str:
    return f"namespace {namespace}" if namespace else "all namespaces"


class StreamHealth:
    def __init__(self, health: Health, streams: Iterable[Stream]) -> None:
        self.health = health
        self._failing: dict[Stream, tuple[str, str]] = {}  # stream -> (verb, blocker text)
        self._watching: set[Stream] = set()  # streams whose last watch request was answered
        self._streams = set(streams)
        for stream in self._streams:
            self._update(stream)

    @property
    def failing(self) -> bool:
        """A list or watch request is failing right now."""
        return bool(self._failing)

    def failed(
        self, resource: ResourceId, namespace: str | None, verb: str, status: int | None, error: str
    ) -> None:
        stream, plural = (resource, namespace), resource.plural
        if status in (401, 403):
            reason = "unauthorized" if status == 401 else "forbidden"
            text = (
                f"cannot {verb} {plural} in {_where(namespace)} ({reason}): grant the {verb!r} verb on "
                f"{plural} to the controller's account (the chart's RBAC has it); not ready until then"
            )
        else:
            text = (
                f"the {verb} request for {plural} in {_where(namespace)} fails ({printable(error, 300)}); "
                "retrying, the entries stay as they are; not ready until it works"
            )
        first = self._failing.get(stream, ("", ""))[0] != verb
        self._failing[stream] = (verb, text)
        if verb == "watch":
            self._watching.discard(stream)
        self._update(stream)
        if first:
            log.error("%s", text if status not in (401, 403) else f"{text} (API: {printable(error, 300)})")

    def answered(self, resource: ResourceId, namespace: str | None, verb: str) -> None:
        stream = (resource, namespace)
        if self._failing.get(stream, ("", ""))[0] == verb:
            del self._failing[stream]
            log.info("the %s request for %s in %s works again", verb, resource.plural, _where(namespace))
        if verb == "watch":
            self._watching.add(stream)
        self._update(stream)

    def restarted(self) -> None:
        """kopf starts again: no stream counts as established until its watch is answered again."""
        self._watching.clear()
        for stream in self._streams:
            self._update(stream)

    def _update(self, stream: Stream) -> None:
        resource, namespace = stream
        subject = f"{resource} {namespace or '*'}"
        if stream in self._failing:
            self.health.set(Reason.STREAM, self._failing[stream][1], subject)
        elif stream not in self._watching:
            why = f"the watch of {resource.plural} in {_where(namespace)} is not established yet"
            self.health.set(Reason.STREAM, why, subject)
        else:
            self.health.clear(Reason.STREAM, subject)
