"""A list or watch that fails in any way is noted and started again instead of ending kopf; a 429 whose
Retry-After is an HTTP date is retried; a list counts as answered only once its body has arrived; kopf's
operator, should it still fail, is started again with the entries kept (controller/cluster/listing.py,
operate.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from email.utils import formatdate
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kopf._cogs.clients import errors, watching

from controller.cluster import listing, operate
from controller.cluster.apihealth import UNANSWERED_AFTER, ApiHealth, BodyNotReceived, describe, explain
from controller.cluster.streams import StreamHealth
from controller.model import ResourceId
from controller.serve.health import Health, Reason

SERVER = "https://127.0.0.1:6443"
LIST_URL = f"{SERVER}/apis/networking.k8s.io/v1/namespaces/ns/ingresses?limit=500"
INGRESSES = ResourceId("networking.k8s.io", "ingresses")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- the causes, in words ---------------------------------------------------------------------------------


def test_each_bad_answer_is_named():
    status = {"kind": "Status", "message": "etcdserver: request timed out", "code": 500}
    watch_error = watching.WatchingError(f"Error in the watch-stream: {status}")
    assert "ERROR event (500 etcdserver: request timed out)" in describe(watch_error, SERVER)
    try:
        json.loads("<html>")
    except json.JSONDecodeError as err:
        assert "not JSON" in describe(err, SERVER)
    stalled = BodyNotReceived("GET /apis/x/v1/namespaces/ns/ingresses")
    stalled.__cause__ = TimeoutError()
    text = describe(stalled, SERVER)
    assert "stopped sending the body of GET /apis/x/v1/namespaces/ns/ingresses after the headers" in text
    assert "timed out" in text
    gone = errors.APIClientError({"message": "continue token expired", "code": 410}, status=410, headers={})
    assert describe(gone, SERVER) is None  # an answer, for discovery
    assert explain(gone, SERVER) == f"the API server at {SERVER} answered 410 (continue token expired)"


def test_a_list_with_headers_and_no_body_is_named_as_such_not_as_answered():
    health, clock = Health(), Clock()
    api = ApiHealth(health, SERVER, clock)
    api.started(1, "get", LIST_URL, collection=True)
    api.headers(1)
    assert api.awaiting_collection()
    clock.now += UNANSWERED_AFTER
    api.refresh()
    assert "stopped sending the body of GET" in (api.cause() or "")
    assert "stopped sending the body" in health.message(Reason.API_SERVER)
    api.ended(1, None)
    assert api.cause() is None and not api.awaiting_collection()


# ---- Retry-After ------------------------------------------------------------------------------------------


def test_retry_after_as_seconds_or_http_date_within_bounds():
    now = time.time()
    assert listing.retry_after_seconds("5", 1.0) == 5.0
    assert listing.retry_after_seconds(formatdate(now + 7, usegmt=True), 1.0, now=now) == pytest.approx(
        7, abs=1
    )
    assert listing.retry_after_seconds(formatdate(now - 100, usegmt=True), 2.0, now=now) == 1.0  # in the past
    assert listing.retry_after_seconds("86400", 1.0) == 60.0
    assert listing.retry_after_seconds("soon", 3.0) == 3.0
    assert listing.retry_after_seconds("nan", 3.0) == 3.0
    assert listing.retry_after_seconds(None, 3.0) == 3.0


@given(st.text(max_size=60))
def test_retry_after_never_raises_and_stays_bounded(value):
    delay = listing.retry_after_seconds(value, 2.0)
    assert delay == 2.0 or listing.RETRY_AFTER_BOUNDS[0] <= delay <= listing.RETRY_AFTER_BOUNDS[1]


def test_a_429_with_an_http_date_is_retried_not_raised(monkeypatch):
    calls, seen = [], []
    monkeypatch.setattr(listing, "RETRY_AFTER_BOUNDS", (0.0, 0.0))

    async def fake_request(method, url, *args, logger, **kwargs):
        calls.append(url)
        if len(calls) == 1:  # what kopf 1.45 does with "Retry-After: <HTTP date>"
            headers = {"Retry-After": formatdate(usegmt=True)}
            try:
                raise errors.APITooManyRequestsError(
                    {"message": "slow down", "code": 429}, status=429, headers=headers
                )
            except errors.APITooManyRequestsError as err:
                int(float(err.headers["Retry-After"]))
        return "response"

    monkeypatch.setattr(listing, "_original_request", fake_request)
    unobserve = listing.observe_api(lambda *event: seen.append(event))
    try:
        url = LIST_URL + "&watch=true"
        assert asyncio.run(listing._observed_request("get", url, logger=logging.getLogger("x"))) == "response"
    finally:
        unobserve()
    assert len(calls) == 2
    assert [e[1] for e in seen] == ["start", "attempt failed", "end"]
    assert getattr(seen[1][5], "status", None) == 429 and seen[-1][5] is None


# ---- a list's body ----------------------------------------------------------------------------------------


class StalledResponse:
    async def read(self) -> bytes:
        raise TimeoutError


def test_a_list_whose_body_fails_is_reported_as_a_stalled_body(monkeypatch):
    seen, streams = [], []

    async def fake_request(method, url, *args, logger, **kwargs):
        return StalledResponse()

    monkeypatch.setattr(listing, "_original_request", fake_request)
    unobserve = listing.observe_api(lambda *event: seen.append(event))
    unobserve_requests = listing.observe_requests(lambda *event: streams.append(event))
    try:
        with pytest.raises(TimeoutError):  # kopf's own handling of a timeout stays as it was
            asyncio.run(listing._observed_request("get", LIST_URL, logger=logging.getLogger("x")))
    finally:
        unobserve()
        unobserve_requests()
    assert [e[1] for e in seen] == ["start", "headers", "end"]
    assert isinstance(seen[-1][5], BodyNotReceived)
    assert streams[-1][:3] == (INGRESSES, "ns", "list") and isinstance(streams[-1][3], BodyNotReceived)


# ---- the stream -------------------------------------------------------------------------------------------


def test_a_stream_that_raises_is_noted_and_started_again(monkeypatch):
    runs, failures, listings = [], [], []
    monkeypatch.setattr(listing, "STREAM_BACKOFFS", (0.0,))

    async def fake_infinite_watch(**kwargs):
        runs.append(kwargs)
        yield {"type": None, "object": {"metadata": {"uid": f"u{len(runs)}"}}}
        yield watching.Bookmark.LISTED
        if len(runs) == 1:
            raise watching.WatchingError("Error in the watch-stream: {'code': 500, 'message': 'etcd'}")
        yield {"type": "ADDED", "object": {"metadata": {"uid": "late"}}}

    monkeypatch.setattr(listing, "_original_infinite_watch", fake_infinite_watch)
    monkeypatch.setitem(listing._last_collection_request, (INGRESSES, "ns"), ("watch", "get", LIST_URL))
    unobserve = listing.observe(lambda *event: listings.append(event[2]))
    unobserve_requests = listing.observe_requests(lambda *event: failures.append(event))

    async def consume() -> list:
        stream = listing._observed_infinite_watch(
            resource=SimpleNamespace(group="networking.k8s.io", plural="ingresses"), namespace="ns"
        )
        events = []
        async for event in stream:
            events.append(event)
            if len(events) == 5:
                break
        await stream.aclose()
        return events

    try:
        events = asyncio.run(consume())
    finally:
        unobserve()
        unobserve_requests()
    assert len(runs) == 2  # started again after the failure
    assert events[-1]["object"]["metadata"]["uid"] == "late"
    assert listings == ["start", "object", "complete", "start", "object", "complete"]
    [(resource, namespace, verb, error)] = failures
    assert (resource, namespace, verb) == (INGRESSES, "ns", "watch")
    assert isinstance(error, watching.WatchingError)


def test_a_cancelled_stream_is_not_restarted(monkeypatch):
    runs = []

    async def fake_infinite_watch(**kwargs):
        runs.append(1)
        await asyncio.sleep(3600)
        yield None

    monkeypatch.setattr(listing, "_original_infinite_watch", fake_infinite_watch)

    async def consume() -> None:
        stream = listing._observed_infinite_watch(resource=SimpleNamespace(plural="x"), namespace=None)
        task = asyncio.create_task(stream.__anext__())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(consume())
    assert runs == [1]


# ---- kopf's operator --------------------------------------------------------------------------------------


def test_a_failed_operator_is_started_again_with_the_entries_kept(monkeypatch, caplog):
    monkeypatch.setattr(operate, "OPERATOR_BACKOFFS", (0.0,))
    health = Health()
    api = ApiHealth(health, SERVER)
    streams = StreamHealth(health, [(INGRESSES, "ns")])
    streams.answered(INGRESSES, "ns", "watch")  # established before kopf failed
    starts, installs = [], []

    async def scenario() -> None:
        stop, ready = asyncio.Event(), asyncio.Event()

        async def start(run_ready: asyncio.Event) -> None:
            starts.append(1)
            if len(starts) == 1:
                raise RuntimeError("a kopf task ended")
            run_ready.set()
            await stop.wait()

        task = asyncio.create_task(
            operate.operate(start, stop, ready, health, api, streams, lambda: installs.append(1))
        )
        while not ready.is_set():
            await asyncio.sleep(0.01)
        assert not task.done() and not health.blocked_by(Reason.OPERATOR)
        assert "not established" in health.why_not_ready()  # until the new kopf's watch is answered
        stop.set()
        await asyncio.wait_for(task, 5)
        assert task.exception() is None

    with caplog.at_level(logging.ERROR, logger="controller"):
        asyncio.run(scenario())
    assert len(starts) == 2
    assert len(installs) >= 2  # ours again at once after the failure, and once the new kopf is ready
    assert "kopf's operator stopped" in caplog.text and "keeping the entries" in caplog.text
