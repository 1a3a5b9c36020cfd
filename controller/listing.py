"""Tells the state when a watch stream has finished (re)listing a scope.

kopf guarantees that indexes are filled before resource handlers run, but with zero matching objects no
handler fires at all, so handlers alone cannot say "namespace X is listed and empty". kopf's watch stream
does know: it yields a LISTED bookmark after every (re)listing, even an empty one. We wrap that stream,
observe the listing events and the bookmark, and pass every event on unchanged: kopf's behaviour is the
same, we only listen. The hook is installed once per process and is a no-op for other resources.

It also wraps kopf's API request function to learn how each request ends (answered, or failed and retried):
the list and watch requests of a watched resource per stream, so that readiness can say no while a watch
cannot be established, e.g. a token that may list but not watch (controller/streams.py); and every request,
discovery included, with its error, so that a refused, unanswered, untrusted or denied request is named as
such (controller/apihealth.py). kopf retries such a request forever and only logs it; the wrapper passes a
logger that notes the failure (the exception being handled) and logs on.

This uses kopf internals (the watching and api modules); tests/integration covers them, the kopf version
range in pyproject.toml is the one these tests ran with, and controller/runner.py reports a listing that
never comes (docs/architecture.md, decision 10).
"""

from __future__ import annotations

import itertools
import logging
import sys
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import api, watching

# observer(plural, scope, what, uid): what is "start", "object" (uid given) or "complete"
ListingObserver = Callable[[str, str | None, str, str | None], None]

# request observer(plural, scope, verb, error): verb "list" or "watch"; error None when answered
RequestObserver = Callable[[str, str | None, str, BaseException | None], None]

# api observer(request id, event, method, url, collection, error): event "start" (error None), "attempt
# failed" (kopf retries) or "end" (error None when answered); collection: a list or watch request
ApiObserver = Callable[[int, str, str, str, bool, BaseException | None], None]

_observers: list[ListingObserver] = []
_request_observers: list[RequestObserver] = []
_api_observers: list[ApiObserver] = []
_request_ids = itertools.count(1)
_original_infinite_watch = watching.infinite_watch
_original_request = api.request


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
        if isinstance(event, dict):
            _slim(event.get("object"))
        yield event


# What no handler reads and kopf does not need: the bulk of a typical object's metadata. Dropped before
# kopf queues the event, so the per-object workers of a big listing hold less (docs/benchmarks.md).
_UNREAD_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def _slim(obj: Any) -> None:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        for key in _UNREAD_ANNOTATIONS:
            annotations.pop(key, None)


def _notify(plural: str, scope: str | None, what: str, uid: str | None) -> None:
    for observer in _observers:
        observer(plural, scope, what, uid)


def observe(observer: ListingObserver) -> Callable[[], None]:
    """Register an observer (plural, scope, "start"|"object"|"complete", uid); returns an unregister."""
    if watching.infinite_watch is not _observed_infinite_watch:
        watching.infinite_watch = _observed_infinite_watch
    _observers.append(observer)
    return lambda: _observers.remove(observer)


# ---- list and watch requests -----------------------------------------------------------------------------


def collection_request(method: str, url: str) -> tuple[str, str | None, str] | None:
    """(plural, namespace or None, "list" | "watch") for a GET of a collection; None for anything else."""
    if method.lower() != "get":
        return None
    parts = urllib.parse.urlsplit(url)
    segments = [p for p in parts.path.split("/") if p]
    if not segments or segments[0] not in ("api", "apis"):
        return None
    path = segments[3:] if segments[0] == "apis" else segments[2:]  # past the group and version
    namespace = None
    if len(path) >= 3 and path[0] == "namespaces":
        namespace, path = path[1], path[2:]
    if len(path) != 1:
        return None  # one object, a subresource, or the namespaces list itself
    query = urllib.parse.parse_qs(parts.query)
    verb = "watch" if query.get("watch", [""])[0].lower() in ("true", "1") else "list"
    return path[0], namespace, verb


class _FailureNotingLogger(logging.LoggerAdapter):
    """kopf logs each failed attempt from inside its except block: note the exception, then log as usual."""

    def __init__(self, logger: Any, note: Callable[[BaseException], None]) -> None:
        super().__init__(logger, {})
        self.note = note

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        error = sys.exc_info()[1]
        if level >= logging.ERROR and error is not None:
            self.note(error)
        self.logger.log(level, msg, *args, **kwargs)


async def _observed_request(method: str, url: str, *args: Any, logger: Any, **kwargs: Any) -> Any:
    if not (_request_observers or _api_observers):
        return await _original_request(method, url, *args, logger=logger, **kwargs)
    target = collection_request(method, url)
    request = next(_request_ids)

    def note(error: BaseException) -> None:
        if target is not None:
            _notify_request(*target, error)
        _notify_api(request, "attempt failed", method, url, target is not None, error)

    _notify_api(request, "start", method, url, target is not None, None)
    try:
        response = await _original_request(
            method, url, *args, logger=_FailureNotingLogger(logger, note), **kwargs
        )
    except BaseException as error:  # noted and re-raised: kopf decides what it means
        _notify_api(request, "end", method, url, target is not None, error)
        raise
    if target is not None:
        _notify_request(*target, None)
    _notify_api(request, "end", method, url, target is not None, None)
    return response


def _notify_api(
    request: int, event: str, method: str, url: str, collection: bool, error: BaseException | None
) -> None:
    for observer in _api_observers:
        try:
            observer(request, event, method, url, collection, error)
        except Exception as fault:  # a fault of ours must not fail kopf's request
            logging.getLogger("k8s-hosts-controller").error("noting how %s %s ended: %r", method, url, fault)


def _notify_request(plural: str, scope: str | None, verb: str, error: BaseException | None) -> None:
    for observer in _request_observers:
        observer(plural, scope, verb, error)


def observe_requests(observer: RequestObserver) -> Callable[[], None]:
    """Register an observer (plural, scope, "list"|"watch", error or None); returns an unregister."""
    return _observe_with_request_hook(_request_observers, observer)


def observe_api(observer: ApiObserver) -> Callable[[], None]:
    """Register an observer of every API request kopf makes; returns an unregister function."""
    return _observe_with_request_hook(_api_observers, observer)


def _observe_with_request_hook(observers: list[Any], observer: Any) -> Callable[[], None]:
    """Install the request hook (once per process) and add ``observer`` to ``observers``."""
    if api.request is not _observed_request:
        api.request = _observed_request
    observers.append(observer)
    return lambda: observers.remove(observer)
