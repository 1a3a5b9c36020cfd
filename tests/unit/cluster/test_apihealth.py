"""How API requests end, in plain words: the cause of a failure, a request without an answer, logged once per
episode and shown on /readyz; and the request wrapper that reports every request (discovery included)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys

import pytest
from kopf._cogs.clients import errors

from controller.cluster import listing
from controller.cluster.apihealth import UNANSWERED_AFTER, ApiHealth, describe
from controller.serve.health import Health, Reason

SERVER = "https://127.0.0.1:6443"
LOGGER = "controller"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def api_error(cls, status: int, message: str) -> errors.APIError:
    return cls({"message": message, "code": status}, status=status, headers={})


def wrapped(outer: type[BaseException], inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as err:
            raise outer("wrapper") from err
    except BaseException as err:
        return err


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused: nothing listens at"),
        (TimeoutError(), "timed out"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "TLS handshake"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "is not trusted"),
        (api_error(errors.APIUnauthorizedError, 401, "Unauthorized"), "401 Unauthorized"),
        (api_error(errors.APIForbiddenError, 403, "cannot list ingresses"), "403 Forbidden"),
        (api_error(errors.APIServerError, 503, "etcd is down"), "answered 503 (etcd is down)"),
        (wrapped(RuntimeError, api_error(errors.APIUnauthorizedError, 401, "x")), "401 Unauthorized"),
        (wrapped(RuntimeError, ConnectionRefusedError(111, "refused")), "connection refused"),
        (OSError(113, "No route to host"), "cannot reach the API server at"),
    ],
)
def test_each_failure_is_described_by_its_cause(error, words):
    text = describe(error, SERVER)
    assert words in text and SERVER in text
    assert "\n" not in text and len(text) < 400


def test_answers_are_not_failures():
    assert describe(api_error(errors.APINotFoundError, 404, "gone"), SERVER) is None
    assert describe(api_error(errors.APIConflictError, 409, "conflict"), SERVER) is None


def test_a_failure_is_logged_once_shown_on_readyz_and_cleared_by_an_answer(caplog):
    health, clock = Health(), Clock()
    api = ApiHealth(health, SERVER, clock)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for attempt in range(5):  # kopf retries the discovery request, and another one
            api.started(attempt, "GET", f"{SERVER}/api", False)
            api.attempt_failed(attempt, ConnectionRefusedError(111, "refused"))
            api.started(100 + attempt, "get", f"{SERVER}/apis?x=1", False)
            api.attempt_failed(100 + attempt, ConnectionRefusedError(111, "refused"))
            clock.now += 1
    errors_logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors_logged) == 1 and "connection refused" in errors_logged[0], errors_logged
    assert "connection refused" in health.message(Reason.API_SERVER) and not health.ready
    assert "connection refused" in api.cause()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for request in (4, 104):
            api.ended(request, None)
    assert api.cause() is None and not health.blocked_by(Reason.API_SERVER)
    assert "answers again" in caplog.records[-1].getMessage()


def test_a_request_without_an_answer_becomes_the_cause_after_a_while():
    health, clock = Health(), Clock()
    api = ApiHealth(health, SERVER, clock)
    api.started(1, "GET", f"{SERVER}/api", False)
    clock.now += UNANSWERED_AFTER - 1
    api.refresh()
    assert api.cause() is None
    clock.now += 2
    api.refresh()
    assert "no answer from the API server" in api.cause() and "[GET /api]" in api.cause()
    assert "no answer" in health.message(Reason.API_SERVER)
    api.attempt_failed(1, TimeoutError())  # then the request times out: that is named
    assert "timed out" in api.cause()


def test_list_and_watch_failures_count_for_the_cause_but_are_shown_by_the_streams(caplog):
    health = Health()
    api = ApiHealth(health, SERVER, Clock())
    forbidden = api_error(errors.APIForbiddenError, 403, "cannot list resource ingresses")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        api.started(1, "GET", f"{SERVER}/apis/networking.k8s.io/v1/namespaces/a/ingresses", True)
        api.attempt_failed(1, forbidden)
    assert "403 Forbidden" in api.cause() and "cannot list resource ingresses" in api.cause()
    assert (
        not health.blocked_by(Reason.API_SERVER) and not caplog.records
    )  # controller/cluster/streams.py says it


def test_a_session_kopf_closed_to_log_in_again_is_not_a_server_failure():
    api = ApiHealth(Health(), SERVER, Clock())
    api.started(1, "GET", f"{SERVER}/api", False)
    api.attempt_failed(1, RuntimeError("Session is closed"))
    api.ended(1, asyncio.CancelledError())
    assert api.cause() is None


# ---- the request wrapper ----------------------------------------------------------------------------------


def test_every_request_is_reported_with_each_failed_attempt(monkeypatch):
    """kopf's request function retries inside; the wrapper hears each failed attempt through the logger kopf
    logs it with, and the end of the request, for discovery as for list requests."""
    seen: list[tuple] = []

    async def fake_request(method, url, *args, logger, **kwargs):
        for attempt in range(2):
            try:
                raise ConnectionRefusedError(111, "refused")
            except ConnectionRefusedError as err:
                logger.error(f"Request attempt #{attempt} failed; will retry: {method} {url} -> {err!r}")
        return "response"

    monkeypatch.setattr(listing, "_original_request", fake_request)
    unobserve = listing.observe_api(lambda *event: seen.append(event))
    try:
        answer = asyncio.run(
            listing._observed_request("get", f"{SERVER}/apis", logger=logging.getLogger("kopf.test"))
        )
    finally:
        unobserve()
    assert answer == "response"
    assert [(e[1], e[2], e[3], e[4]) for e in seen] == [
        ("start", "get", f"{SERVER}/apis", False),
        ("attempt failed", "get", f"{SERVER}/apis", False),
        ("attempt failed", "get", f"{SERVER}/apis", False),
        ("end", "get", f"{SERVER}/apis", False),
    ]
    assert isinstance(seen[1][5], ConnectionRefusedError) and seen[-1][5] is None
    assert len({e[0] for e in seen}) == 1  # one request id


def test_a_request_that_raises_is_reported_and_the_error_passes_on(monkeypatch):
    seen: list[tuple] = []
    login_failed = RuntimeError("Ran out of valid credentials")

    async def fake_request(method, url, *args, logger, **kwargs):
        raise login_failed

    monkeypatch.setattr(listing, "_original_request", fake_request)
    unobserve = listing.observe_api(lambda *event: seen.append(event))
    try:
        with pytest.raises(RuntimeError):
            asyncio.run(listing._observed_request("get", f"{SERVER}/api", logger=logging.getLogger("x")))
    finally:
        unobserve()
    assert [e[1] for e in seen] == ["start", "end"] and seen[-1][5] is login_failed


def test_a_faulty_observer_does_not_fail_the_request(monkeypatch):
    async def fake_request(method, url, *args, logger, **kwargs):
        return "response"

    def broken(*_):
        raise ValueError("a bug of ours")

    monkeypatch.setattr(listing, "_original_request", fake_request)
    unobserve = listing.observe_api(broken)
    try:
        assert (
            asyncio.run(listing._observed_request("get", "/api", logger=logging.getLogger("x"))) == "response"
        )
    finally:
        unobserve()


# ---- the watchdog: what holds the first listing back ------------------------------------------------------


@pytest.fixture
def short_bounds(monkeypatch):
    from controller import runner

    monkeypatch.setattr(runner, "WATCHDOG_INTERVAL", 0.01)
    monkeypatch.setattr(runner, "ONE_SHOT_BOUND", 0.1)
    monkeypatch.setattr(runner, "LISTING_BOUND", 0.1)
    return runner


def watchdog_parts():
    from controller.cluster.sources import INGRESS
    from controller.cluster.streams import StreamHealth
    from controller.sync.state import ClusterState

    health = Health()
    state = ClusterState([(INGRESS.id, "ns")])
    streams = StreamHealth(health, [(INGRESS.id, "ns")])
    api = ApiHealth(health, SERVER)
    return health, state, streams, api


async def ready_flag() -> asyncio.Event:
    flag = asyncio.Event()
    flag.set()
    return flag


def test_one_shot_gives_up_with_the_failing_request_as_the_cause(short_bounds):
    health, state, streams, api = watchdog_parts()
    api.started(1, "GET", f"{SERVER}/api", False)
    api.attempt_failed(1, ConnectionRefusedError(111, "refused"))

    async def scenario():
        return await asyncio.wait_for(
            short_bounds._check_listing(await ready_flag(), state, streams, api, health, True), 5
        )

    waited, cause = asyncio.run(scenario())
    assert "connection refused" in cause and waited >= 0.1
    assert not health.blocked_by(Reason.LISTING_HOOK)


def test_while_requests_fail_the_listing_hook_is_never_blamed(short_bounds):
    health, state, streams, api = watchdog_parts()
    api.started(1, "GET", f"{SERVER}/apis", False)
    api.attempt_failed(1, ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"))

    async def scenario():
        task = asyncio.create_task(
            short_bounds._check_listing(await ready_flag(), state, streams, api, health, False)
        )
        await asyncio.sleep(0.5)  # five times the listing bound
        assert not task.done()  # the long-running check never gives up
        task.cancel()

    asyncio.run(scenario())
    assert not health.blocked_by(Reason.LISTING_HOOK)
    assert "TLS handshake" in health.why_not_ready()


@pytest.mark.parametrize("one_shot", [False, True])
def test_while_requests_work_a_listing_that_never_comes_blames_the_hook(short_bounds, one_shot, caplog):
    health, state, streams, api = watchdog_parts()
    api.started(1, "GET", f"{SERVER}/apis", False)
    api.ended(1, None)

    async def scenario():
        task = asyncio.create_task(
            short_bounds._check_listing(await ready_flag(), state, streams, api, health, one_shot)
        )
        await asyncio.sleep(0.5)
        result = task.result() if task.done() else None
        task.cancel()
        return result

    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = asyncio.run(scenario())
    assert "does not fire with this kopf version" in health.message(Reason.LISTING_HOOK)
    if one_shot:
        assert "listing hook" in result[1]
    else:
        assert result is None and caplog.text.count("does not fire") == 1


def test_without_verbose_kopf_and_asyncio_records_are_one_line_without_a_traceback():
    from controller.serve.logs import OneLineForLibraries, TextFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(TextFormatter("%(name)s: %(message)s"))
    handler.addFilter(OneLineForLibraries())
    try:
        raise RuntimeError("Ran out of valid credentials")
    except RuntimeError:
        exc_info = sys.exc_info()
    lines = []
    for name in ("kopf._core.reactor.running", "asyncio", "controller.cluster.apihealth"):
        record = logging.LogRecord(name, logging.ERROR, __file__, 1, "failed:\n%s", ("details",), exc_info)
        assert handler.filter(record)
        lines.append(handler.format(record))
    assert lines[0] == "kopf._core.reactor.running: failed: details"
    assert lines[1] == "asyncio: failed: details"
    assert "Traceback" in lines[2]  # our own records keep theirs
