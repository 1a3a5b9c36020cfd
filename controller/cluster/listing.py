"""Tells the state when a watch stream has finished (re)listing a scope.

kopf guarantees that indexes are filled before resource handlers run, but with zero matching objects no
handler fires at all, so handlers alone cannot say "namespace X is listed and empty". kopf's watch stream
does know: it yields a LISTED bookmark after every (re)listing, even an empty one. We wrap that stream,
observe the listing events and the bookmark, and pass every event on unchanged: kopf's behaviour is the
same, we only listen. The hook is installed once per process and is a no-op for other resources.

It also wraps kopf's API request function to learn how each request ends (answered, or failed and retried):
the list and watch requests of a watched resource per stream, so that readiness can say no while a watch
cannot be established, e.g. a token that may list but not watch (controller/cluster/streams.py); and every
request, discovery included, with its error, so that a refused, unanswered, untrusted or denied request is
named as such (controller/cluster/apihealth.py). kopf retries such a request forever and only logs it; the
wrapper passes a logger that notes the failure (the exception being handled) and logs on.

The same wrappers keep one bad answer from ending kopf (docs/architecture.md, decision 7): a stream that
raises is noted as the failure of its request and started again after a backoff; a list counts as answered
only once its body has arrived (a server may send the headers and then nothing); a 429 whose Retry-After is
an HTTP date (which kopf cannot read) is retried after the time it asks for.

This uses kopf internals (the watching and api modules); tests/integration covers them, the kopf version
range in pyproject.toml is the one these tests ran with, and controller/runner.py reports a listing that
never comes (docs/architecture.md, decision 10).
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import itertools
import logging
import math
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import api, errors, watching
from kopf._cogs.structs import credentials

from controller.cluster import apihealth
from controller.model import ResourceId

log = logging.getLogger(__name__)

# Observers learn the resource as its API group and plural (a kind may exist in several groups).
# observer(resource, scope, what, uid): what is "start", "object" (uid given) or "complete"
ListingObserver = Callable[[ResourceId, str | None, str, str | None], None]

# request observer(resource, scope, verb, error): verb "list" or "watch"; error None when answered
RequestObserver = Callable[[ResourceId, str | None, str, BaseException | None], None]

# api observer(request id, event, method, url, collection, error): event "start" (error None), "attempt
# failed" (kopf retries), "headers" (a list's headers arrived, its body is awaited), "end" (error None when
# answered) or "stream failed" (request id 0: the stream of an answered list or watch request failed);
# collection: a list or watch request
ApiObserver = Callable[[int, str, str, str, bool, BaseException | None], None]

_observers: list[ListingObserver] = []
_request_observers: list[RequestObserver] = []
_api_observers: list[ApiObserver] = []
_request_ids = itertools.count(1)
# (resource, namespace) -> (verb, method, url) of the stream's latest list or watch request
_last_collection_request: dict[tuple[ResourceId, str | None], tuple[str, str, str]] = {}
_original_infinite_watch = watching.infinite_watch
_original_request = api.request


async def _observed_infinite_watch(**kwargs: Any) -> AsyncIterator[Any]:
    """kopf's stream, observed; and restarted, after a backoff, whenever it raises.

    kopf's stream ends the whole operator on a watch ERROR event other than 410, on a line or a list body
    that is not JSON, on an HTTP error its request does not retry: one bad answer would end the controller.
    Here every such failure is noted (not ready, with the cause) and the stream starts again with a fresh
    listing (controller/sync/state.py forgets what was deleted meanwhile); the entries stay as they are. Only
    used-up credentials pass on: kopf retries a refused token no more, a new operator does.
    """
    kopf_resource = kwargs.get("resource")
    resource = ResourceId(getattr(kopf_resource, "group", ""), getattr(kopf_resource, "plural", ""))
    scope = kwargs.get("namespace")
    loop = asyncio.get_running_loop()
    failures, last_failure = 0, -math.inf
    while True:
        listing = False
        try:
            async for event in _original_infinite_watch(**kwargs):
                if event is watching.Bookmark.LISTED:
                    if not listing:  # an empty listing yields only the bookmark
                        _notify(resource, scope, "start", None)
                    _notify(resource, scope, "complete", None)
                    listing = False
                elif isinstance(event, dict) and event.get("type") is None:
                    if not listing:
                        _notify(resource, scope, "start", None)
                        listing = True
                    uid = ((event.get("object") or {}).get("metadata") or {}).get("uid")
                    _notify(resource, scope, "object", uid)
                if isinstance(event, dict):
                    _slim(event.get("object"))
                yield event
            return  # kopf's stream ends only when its tests bound it
        except Exception as error:  # not CancelledError/GeneratorExit: those end the stream
            if loop.time() - last_failure > BACKOFF_RESET_AFTER:
                failures = 0  # an isolated failure: start the backoff over
            delay = STREAM_BACKOFFS[min(failures, len(STREAM_BACKOFFS) - 1)]
            failures, last_failure = failures + 1, loop.time()
            _stream_failed(resource, scope, error)
            if isinstance(error, credentials.LoginError):
                # kopf's credentials are used up (a 401, and the login gave the same token): only a new
                # kopf operator tries them again; controller/cluster/operate.py starts one, keeping
                # the entries.
                raise
            log.debug(
                "the %s stream in %s failed (%r); starting it again in %.0fs",
                resource.plural,
                scope,
                error,
                delay,
            )
            await asyncio.sleep(delay)


# A failed stream starts again after these delays (docs/architecture.md, decision 7); the sequence starts
# over once the stream has run this long without failing.
STREAM_BACKOFFS = (1.0, 1.0, 2.0, 3.0, 5.0, 10.0)
BACKOFF_RESET_AFTER = 60.0


def _stream_failed(resource: ResourceId, scope: str | None, error: BaseException) -> None:
    """Report a failed stream as a failure of its last list or watch request (the one that answered)."""
    verb, method, url = _last_collection_request.get((resource, scope), ("list", "get", ""))
    _notify_request(resource, scope, verb, error)
    if url:
        _notify_api(0, "stream failed", method, url, True, error)


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


def _notify(resource: ResourceId, scope: str | None, what: str, uid: str | None) -> None:
    for observer in _observers:
        observer(resource, scope, what, uid)


def observe(observer: ListingObserver) -> Callable[[], None]:
    """Register an observer (resource, scope, "start"|"object"|"complete", uid); returns an unregister."""
    if watching.infinite_watch is not _observed_infinite_watch:
        watching.infinite_watch = _observed_infinite_watch
    _observers.append(observer)
    return lambda: _observers.remove(observer)


# ---- list and watch requests -----------------------------------------------------------------------------


def collection_request(method: str, url: str) -> tuple[ResourceId, str | None, str] | None:
    """(resource, namespace or None, "list" | "watch") for a GET of a collection; None for anything else."""
    if method.lower() != "get":
        return None
    parts = urllib.parse.urlsplit(url)
    segments = [p for p in parts.path.split("/") if p]
    if not segments or segments[0] not in ("api", "apis"):
        return None
    group = segments[1] if segments[0] == "apis" and len(segments) > 1 else ""
    path = segments[3:] if segments[0] == "apis" else segments[2:]  # past the group and version
    namespace = None
    if len(path) >= 3 and path[0] == "namespaces":
        namespace, path = path[1], path[2:]
    if len(path) != 1:
        return None  # one object, a subresource, or the namespaces list itself
    query = urllib.parse.parse_qs(parts.query)
    verb = "watch" if query.get("watch", [""])[0].lower() in ("true", "1") else "list"
    return ResourceId(group, path[0]), namespace, verb


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
    target = collection_request(method, url)
    request = next(_request_ids)
    if target is not None:
        _last_collection_request[target[:2]] = (target[2], method, url)

    def note(error: BaseException) -> None:
        if target is not None:
            _notify_request(*target, error)
        _notify_api(request, "attempt failed", method, url, target is not None, error)

    _notify_api(request, "start", method, url, target is not None, None)
    noting = _FailureNotingLogger(logger, note)
    try:
        response = await _request_honouring_retry_after(
            method, url, *args, logger=noting, note=note, **kwargs
        )
    except BaseException as error:  # noted and re-raised: kopf decides what it means
        _notify_api(request, "end", method, url, target is not None, error)
        raise
    if target is not None and target[2] == "list":
        # A list counts as answered when its body has arrived, not its headers: read it here (aiohttp
        # keeps it for kopf's own read).
        _notify_api(request, "headers", method, url, True, None)
        try:
            await response.read()
        except BaseException as error:  # noted and re-raised: kopf handles the read's error as before
            failure: BaseException = error
            if isinstance(error, Exception):
                failure = apihealth.BodyNotReceived(apihealth.target(method, url))
                failure.__cause__ = error
                _notify_request(*target, failure)
            _notify_api(request, "end", method, url, True, failure)
            raise
    if target is not None:
        _notify_request(*target, None)
    _notify_api(request, "end", method, url, target is not None, None)
    return response


async def _request_honouring_retry_after(
    method: str, url: str, *args: Any, logger: Any, note: Callable[[BaseException], None], **kwargs: Any
) -> Any:
    """kopf's request; a 429 whose Retry-After kopf cannot read (an HTTP date: kopf expects seconds and
    raises ValueError from inside its retry loop) is retried here, after the time it asks for (bounded)."""
    failures = 0
    while True:
        try:
            return await _original_request(method, url, *args, logger=logger, **kwargs)
        except ValueError as error:
            too_many = error.__context__
            if not isinstance(too_many, errors.APITooManyRequestsError):
                raise
            note(too_many)
            fallback = STREAM_BACKOFFS[min(failures, len(STREAM_BACKOFFS) - 1)]
            failures += 1
            # what the server asks for, but no less than the backoff: repeated 429s wait longer each time
            delay = max(retry_after_seconds((too_many.headers or {}).get("Retry-After"), fallback), fallback)
            logger.warning(
                "%s %s: the API server answered 429 with Retry-After %r; retrying in %.0fs",
                method.upper(),
                url,
                (too_many.headers or {}).get("Retry-After"),
                delay,
            )
            await asyncio.sleep(delay)


RETRY_AFTER_BOUNDS = (1.0, 60.0)  # a server's "later" is honoured within these seconds


def retry_after_seconds(value: str | None, fallback: float, now: float | None = None) -> float:
    """Seconds to wait for a Retry-After header: a number of seconds or an HTTP date, within
    RETRY_AFTER_BOUNDS; ``fallback`` when it is neither."""
    low, high = RETRY_AFTER_BOUNDS
    if not value:
        return fallback
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return fallback
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return fallback
    return min(max(seconds, low), high)


def _notify_api(
    request: int, event: str, method: str, url: str, collection: bool, error: BaseException | None
) -> None:
    for observer in _api_observers:
        try:
            observer(request, event, method, url, collection, error)
        except Exception as fault:  # a fault of ours must not fail kopf's request
            log.error("noting how %s %s ended: %r", method, url, fault)


def _notify_request(resource: ResourceId, scope: str | None, verb: str, error: BaseException | None) -> None:
    for observer in _request_observers:
        observer(resource, scope, verb, error)


def observe_requests(observer: RequestObserver) -> Callable[[], None]:
    """Register an observer (resource, scope, "list"|"watch", error or None); returns an unregister."""
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
