"""Tells the state when a watch stream has finished (re)listing a scope.

kopf guarantees that indexes are filled before resource handlers run, but with zero matching objects no
handler fires at all, so handlers alone cannot say "namespace X is listed and empty". kopf's watch stream
does know: it yields a LISTED bookmark after every (re)listing, even an empty one. We wrap that stream,
observe the listing events and the bookmark, and pass every event on unchanged: kopf's behaviour is the
same, we only listen. The hook is installed once per process and is a no-op for other resources.

This uses a kopf internal (the watching module); tests/integration covers it, and the kopf version range
in pyproject.toml is the one these tests ran with (docs/architecture.md, decision 10).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import watching

# observer(plural, scope, what, uid): what is "start", "object" (uid given) or "complete"
ListingObserver = Callable[[str, str | None, str, str | None], None]

_observers: list[ListingObserver] = []
_original_infinite_watch = watching.infinite_watch


async def _observed_infinite_watch(**kwargs: Any) -> AsyncIterator[Any]:
    resource = kwargs.get("resource")
    plural = getattr(resource, "plural", "")
    scope = kwargs.get("namespace")
    listing = False
    async for event in _original_infinite_watch(**kwargs):
        if event is watching.Bookmark.LISTED:
            if not listing:  # an empty listing yields only the bookmark
                _notify(plural, scope, "start", None)
            _notify(plural, scope, "complete", None)
            listing = False
        elif isinstance(event, dict) and event.get("type") is None:
            if not listing:
                _notify(plural, scope, "start", None)
                listing = True
            uid = ((event.get("object") or {}).get("metadata") or {}).get("uid")
            _notify(plural, scope, "object", uid)
        yield event


def _notify(plural: str, scope: str | None, what: str, uid: str | None) -> None:
    for observer in _observers:
        observer(plural, scope, what, uid)


def observe(observer: ListingObserver) -> Callable[[], None]:
    """Register an observer (plural, scope, "start"|"object"|"complete", uid); returns an unregister."""
    if watching.infinite_watch is not _observed_infinite_watch:
        watching.infinite_watch = _observed_infinite_watch
    _observers.append(observer)
    return lambda: _observers.remove(observer)
