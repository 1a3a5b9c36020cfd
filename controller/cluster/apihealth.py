"""How the API server answers, for every request kopf makes (discovery included), in plain words.

kopf retries a failed request forever and only logs it; before a watch stream is even started, its discovery
requests (GET /api, /apis) may be refused, time out, fail the TLS handshake or be denied, and nothing else
says so. controller/cluster/listing.py reports each request here: started, an attempt failed (kopf retries),
ended (answered, or raised). From that this module knows the cause of a failure (connection refused, timeout,
TLS, 401, 403, an HTTP error) or a request left without an answer, which /readyz, the log, the listing
watchdog and the --once/--dry-run bound name instead of guessing (docs/architecture.md, decisions 10 and 12).
No kopf here: errors are recognised by type (ssl, OSError, TimeoutError) and by their HTTP status.
"""

from __future__ import annotations

import ast
import asyncio
import errno
import json
import logging
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from controller.engine.printable import printable
from controller.serve.health import Health, Reason

log = logging.getLogger(__name__)

UNANSWERED_AFTER = 10.0  # seconds without any answer to a request: named as the cause (a timeout)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (aiohttp's os_error, certificate_error) and its causes, each once."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for attr in ("certificate_error", "os_error", "__cause__", "__context__"):
            inner = getattr(current, attr, None)
            if isinstance(inner, BaseException):
                todo.append(inner)


class BodyNotReceived(Exception):
    """A list answered its headers and then not its body (the read failed or timed out): reported as such,
    with what happened to the read as the cause."""

    def __init__(self, target: str) -> None:
        super().__init__(f"the body of {target} did not arrive after the headers")
        self.target = target


WATCH_ERROR_PREFIX = "Error in the watch-stream: "  # kopf's WatchingError for an ERROR event


def _watch_error(error: BaseException) -> str | None:
    """'500 etcdserver: request timed out' for kopf's error on a watch ERROR event, None for others."""
    text = str(error)
    if not text.startswith(WATCH_ERROR_PREFIX):
        return None
    try:
        status = ast.literal_eval(text[len(WATCH_ERROR_PREFIX) :])  # kopf puts the event's object's repr
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return printable(text[len(WATCH_ERROR_PREFIX) :], 200)
    if not isinstance(status, dict):
        return printable(repr(status), 200)
    code, message = status.get("code"), status.get("message") or status.get("reason") or ""
    return printable(f"{code} {message}".strip(), 200)


def _not_json(error: BaseException) -> bool:
    return any(
        isinstance(c, json.JSONDecodeError | UnicodeDecodeError) or type(c).__name__ == "ContentTypeError"
        for c in _chain(error)
    )


def _status(error: BaseException) -> int | None:
    for current in _chain(error):
        status = getattr(current, "status", None)
        if isinstance(status, int) and 100 <= status <= 599:
            return status
    return None


def _server_message(error: BaseException) -> str:
    for current in _chain(error):
        message = getattr(current, "message", None)
        if isinstance(message, str) and message:
            return f" ({printable(message, 200)})"
    return ""


# kopf closes its session to log in again (after a 401, or a TLS stream closed): the requests in flight then
# fail on our side, which says nothing about the server.
_SESSION_CLOSED = ("Session is closed", "Session is closed.", "Connector is closed.")


def closed_by_kopf(error: BaseException) -> bool:
    return any(type(c).__name__ == "APISessionClosed" or str(c) in _SESSION_CLOSED for c in _chain(error))


def describe(error: BaseException, server: str) -> str | None:
    """What failed, in one line with what to check; None when the server did answer (404, 409, ...)."""
    if isinstance(error, BodyNotReceived):
        inner = error.__cause__
        if inner is None:
            how = ""
        elif any(isinstance(c, TimeoutError) for c in _chain(inner)):
            how = " (timed out waiting for it)"
        else:
            how = f" ({printable(repr(inner), 120)})"
        return (
            f"the API server at {server} stopped sending the body of {error.target} after the headers{how}: "
            "is it overloaded, or is a proxy in between cutting answers short?"
        )
    watch_error = _watch_error(error)
    if watch_error is not None:
        return f"the API server at {server} ended a watch with an ERROR event ({watch_error})"
    if _not_json(error):
        return (
            f"the API server at {server} sent an answer that is not JSON ({printable(str(error), 120)}): "
            "is a proxy in between answering for it?"
        )
    status = _status(error)
    if status == 401:
        return (
            f"the API server at {server} refused the credentials (401 Unauthorized): the kubeconfig's token "
            "or client certificate is wrong or expired"
        )
    if status == 403:
        return (
            f"the API server at {server} denied the request (403 Forbidden){_server_message(error)}: grant "
            "the controller's account get/list/watch on the sources (the chart's RBAC has them)"
        )
    if status is not None:
        if status == 429 or status >= 500:
            return f"the API server at {server} answered {status}{_server_message(error)}"
        return None  # an answer: the server works
    chain = list(_chain(error))
    untrusted = [c for c in chain if isinstance(c, ssl.SSLCertVerificationError)]
    if untrusted:  # aiohttp's wrapper is one too, without the details
        messages = [m for c in untrusted if isinstance(m := getattr(c, "verify_message", None), str) and m]
        reason = printable(messages[0] if messages else untrusted[0], 120)
        return (
            f"TLS: the certificate of the API server at {server} is not trusted ({reason}): check the "
            "kubeconfig's certificate-authority(-data) and the server address"
        )
    ssl_errors = [c for c in chain if isinstance(c, ssl.SSLError)]
    if ssl_errors:
        reasons = [r for c in ssl_errors if isinstance(r := getattr(c, "reason", None), str) and r]
        reason = printable(reasons[0] if reasons else ssl_errors[0], 120)
        return (
            f"TLS handshake with {server} failed ({reason}): is an API server serving TLS (https) at that "
            "address and port?"
        )
    for current in chain:
        if isinstance(current, TimeoutError):
            return (
                f"timed out: no answer from the API server at {server} within the request timeout (is it "
                "overloaded, or is something other than an API server listening there?)"
            )
    for current in chain:
        if getattr(current, "errno", None) == errno.ECONNREFUSED:  # ConnectionRefusedError, aiohttp's too
            return (
                f"connection refused: nothing listens at {server} (is the API server running, and is the "
                "server address in the kubeconfig right?)"
            )
    for current in chain:
        if isinstance(current, OSError) and current.strerror:
            return f"cannot reach the API server at {server}: {printable(current.strerror, 120)}"
    return f"requests to the API server at {server} fail: {printable(repr(error), 200)}"


def explain(error: BaseException, server: str) -> str:
    """What failed, for a failure that ended a list or watch, whatever it is (an answer too: a 404, a 410)."""
    described = describe(error, server)
    if described is not None:
        return described
    return f"the API server at {server} answered {_status(error)}{_server_message(error)}"


def target(method: str, url: str) -> str:
    """'GET /apis/networking.k8s.io/v1/ingresses': the method and path, without the query."""
    return f"{method.upper()} {urllib.parse.urlsplit(url).path or '/'}"


@dataclass
class _Open:
    target: str
    since: float  # start, the last failed attempt, or the headers: the next part is awaited since then
    collection: bool
    headers: bool = False  # the headers arrived; the body is awaited


class ApiHealth:
    """The outcome of the API requests: the current failures by target, and the requests awaiting an answer.

    The failure of a list or watch request of a watched resource is logged and shown on /readyz by
    controller/cluster/streams.py (per stream, with the verb); everything else, e.g. discovery, and any
    request left without an answer for UNANSWERED_AFTER seconds, is logged (once per episode) and shown here.
    """

    def __init__(self, health: Health, server: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.health = health
        self.server = server
        self.clock = clock
        self._open: dict[int, _Open] = {}
        # target -> (when, cause, collection); a list whose body did not arrive counts as any request (its
        # failure is shown and logged here, as its stall was), not as a list failure
        self._failing: dict[str, tuple[float, str, bool]] = {}
        self._said: str | None = None  # the cause last logged and shown, None when all is well

    # ---- reports from controller/cluster/listing.py ----------------------------------------------------

    def started(self, request: int, method: str, url: str, collection: bool) -> None:
        self._open[request] = _Open(target(method, url), self.clock(), collection)

    def attempt_failed(self, request: int, error: BaseException) -> None:
        """One attempt failed and kopf retries the request."""
        current = self._open.get(request)
        if current is None:
            return
        current.since = self.clock()
        self._note(current.target, error, current.collection)

    def headers(self, request: int) -> None:
        """The headers arrived; the request counts as answered only once its body has arrived too."""
        current = self._open.get(request)
        if current is not None:
            current.since, current.headers = self.clock(), True

    def stream_failed(self, method: str, url: str, error: BaseException) -> None:
        """A list or watch stream failed after its request was answered (a watch ERROR event, a line or a
        body that is not JSON): the failure of that request until a request to it is answered again."""
        self._note(target(method, url), error, True)

    def awaiting_collection(self) -> bool:
        """A list or watch request is waiting for its answer or its body (a listing in progress)."""
        return any(o.collection for o in self._open.values())

    def ended(self, request: int, error: BaseException | None) -> None:
        current = self._open.pop(request, None)
        if current is None:
            return
        if error is None or isinstance(error, asyncio.CancelledError):
            self._failing.pop(current.target, None)  # answered, or nobody waits for it any more
        else:
            self._note(current.target, error, current.collection)
        self.refresh()

    def _note(self, where: str, error: BaseException, collection: bool) -> None:
        if closed_by_kopf(error):
            return
        cause = describe(error, self.server)
        if cause is None:
            self._failing.pop(where, None)
        else:
            stalled = isinstance(error, BodyNotReceived)
            self._failing[where] = (self.clock(), cause, collection and not stalled)
        self.refresh()

    # ---- what is wrong -------------------------------------------------------------------------------------

    def _current(self, include_collections: bool) -> tuple[str, str] | None:
        """(kind, cause with the request) of the latest failure, else of the oldest request without an
        answer; the kind stays the same while the same thing goes wrong (it is logged once)."""
        failing = [
            (when, cause, where)
            for where, (when, cause, collection) in self._failing.items()
            if include_collections or not collection
        ]
        if failing:
            _, cause, where = max(failing)
            kind = "body stalled" if "stopped sending the body" in cause else cause  # one episode
            return kind, f"{cause} [{where}]"
        now = self.clock()
        waiting = [o for o in self._open.values() if now - o.since >= UNANSWERED_AFTER]
        if waiting:
            oldest = min(waiting, key=lambda o: o.since)
            if oldest.headers:
                return "body stalled", (
                    f"the API server at {self.server} stopped sending the body of {oldest.target} after the "
                    f"headers (nothing more for {now - oldest.since:.0f}s): is it overloaded, or is a proxy "
                    f"in between cutting answers short? [{oldest.target}]"
                )
            return "unanswered", (
                f"no answer from the API server at {self.server} for {now - oldest.since:.0f}s (is it "
                f"overloaded, or is something other than an API server listening there?) [{oldest.target}]"
            )
        return None

    def cause(self) -> str | None:
        """What fails now (any request, list and watch included), with the request; None: all is well."""
        current = self._current(include_collections=True)
        return None if current is None else current[1]

    def refresh(self) -> None:
        """Show the cause on /readyz and log it once per episode (a new kind of failure is logged again);
        say when it is gone. Called on every report and periodically (a request without an answer reports
        nothing). List and watch failures are controller/cluster/streams.py's to show."""
        current = self._current(include_collections=False)
        if current is None:
            if self._said is not None:
                self.health.clear(Reason.API_SERVER)
                log.info("the API server at %s answers again", self.server)
                self._said = None
            return
        kind, cause = current
        self.health.set(Reason.API_SERVER, f"{cause}; not ready until it works")
        if kind != self._said:
            log.error("%s", cause)
            self._said = kind
