"""Runs kopf's operator for controller/runner.py: starts it again when it fails, and owns the stop signals.

kopf's operator ends when one of its tasks fails; the entries in the hosts file are still right then (they are
what the cluster said last), so it is started again after a backoff, with the entries kept and /readyz not
ready meanwhile (docs/architecture.md, decision 7). Our SIGTERM/SIGINT/SIGHUP handlers stop it through its
stop flag, so that a signal ends the process (and its cleanup) while kopf is being started again too.
No kopf import here: runner.py passes the function that starts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from controller.cluster.apihealth import ApiHealth
from controller.cluster.streams import StreamHealth
from controller.engine.printable import printable
from controller.serve.health import Health, Reason

log = logging.getLogger(__name__)

# SIGHUP too: a closed terminal must remove the block like Ctrl-C, not kill the process and leave it.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def signal_handlers(signalled: asyncio.Event, stop_flag: asyncio.Event) -> Callable[[], None]:
    """A function that (re)installs our SIGTERM/SIGINT/SIGHUP handlers: they stop kopf through its stop
    flag, so the shutdown is quick and ours.

    kopf installs its own handlers (SIGTERM, SIGINT) each time it starts; runner.py puts ours back right
    after, and they are installed again once it is ready and when it fails (its handlers would then signal
    nobody).
    """

    def on_signal(sig: signal.Signals) -> None:
        log.info("%s received, shutting down", sig.name)
        signalled.set()
        stop_flag.set()

    def install() -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)

    return install


OPERATOR_BACKOFFS = (1.0, 1.0, 2.0, 3.0, 5.0, 10.0)  # decision 7's API retry delays
OPERATOR_EPISODE_AFTER = 60.0  # seconds a restarted operator ran before it failed again: a new episode


async def operate(
    start: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    stop_flag: asyncio.Event,
    ready: asyncio.Event,
    health: Health,
    api: ApiHealth,
    streams: StreamHealth,
    install_signals: Callable[[], None],
) -> None:
    """Run kopf's operator until it stops on a signal or the stop flag; restart it when it fails.

    Its watch streams no longer fail on a bad answer (controller/cluster/listing.py restarts them), so this is
    for whatever else might end it: the entries in the file are still right, so they stay, /readyz says not
    ready with the cause, and kopf starts again after a backoff (docs/architecture.md, decision 7).
    """
    loop = asyncio.get_running_loop()
    failures = 0
    while True:
        run_ready = asyncio.Event()
        relay = asyncio.create_task(_when_ready(run_ready, ready, install_signals))
        started = loop.time()
        try:
            await start(run_ready)
            return
        except Exception as exc:
            if stop_flag.is_set():
                return
            install_signals()
            if loop.time() - started >= OPERATOR_EPISODE_AFTER:
                failures = 0  # it ran for a while: a new episode
            delay = OPERATOR_BACKOFFS[min(failures, len(OPERATOR_BACKOFFS) - 1)]
            failures += 1
            cause = api.cause() or printable(repr(exc), 300)
            health.set(
                Reason.OPERATOR,
                f"kopf's operator stopped ({cause}); restarting it, the entries stay as they are",
            )
            log.log(  # once per episode; each retry in the debug log
                logging.ERROR if failures == 1 else logging.DEBUG,
                "kopf's operator stopped: %s; starting it again in %.0fs, keeping the entries",
                cause,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_flag.wait(), delay)
            if stop_flag.is_set():
                return
            streams.restarted()  # not ready until the new operator's watches are answered
            health.clear(Reason.OPERATOR)
            log.debug("starting kopf's operator again")
        finally:
            relay.cancel()


async def _when_ready(
    run_ready: asyncio.Event, ready: asyncio.Event, install_signals: Callable[[], None]
) -> None:
    await run_ready.wait()
    install_signals()
    ready.set()
