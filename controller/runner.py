"""Runs the controller: kopf (watching), the writer (the file), the metrics endpoint, and shutdown cleanup.

The block is removed on SIGTERM/SIGINT/SIGHUP unless --no-cleanup-on-exit (docs/architecture.md, decision 8),
and with --owner-daemonset only when that DaemonSet is going (decision 13), in a thread and bounded: a lock
held by another process makes it give up, say so and exit 1.
--once and --dry-run give up (exit 1) when the API server keeps failing their requests for ONE_SHOT_BOUND
seconds, naming the cause (controller/cluster/apihealth.py), or when the listing hook never fires (decision
10). Nothing the API server answers ends the process: kopf's operator, should it fail, is started again with
the entries kept (decision 7); only a signal, or the one-shot bounds, end it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import logging

import kopf
from kubernetes import client

from controller import __version__, memory
from controller.cluster import discovery, handlers, kube, sources
from controller.cluster.apihealth import ApiHealth
from controller.cluster.operate import operate, signal_handlers
from controller.cluster.owner import ask, startup_warning
from controller.cluster.streams import StreamHealth
from controller.config import Config
from controller.engine.errors import HostsFileError, LockTimeout
from controller.engine.hostsfile import HostsFile
from controller.engine.record import ClusterRecord
from controller.serve.health import Health, Reason
from controller.serve.metrics import Metrics, parse_bind_address, serve
from controller.sync.blockwatch import BlockWatch
from controller.sync.events import EventQueue
from controller.sync.resolve import Resolver
from controller.sync.state import ClusterState
from controller.sync.writer import Writer

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0
LISTING_BOUND = 60.0  # seconds after kopf is ready without any listing of a scope: the hook is broken
# --once/--dry-run: seconds after the start without a listing while API requests fail or go unanswered (a
# refused port, a server that never answers, TLS, 401/403): a CI job gets exit 1 and the cause, not a hang.
ONE_SHOT_BOUND = 30.0
WATCHDOG_INTERVAL = 1.0
EVENTS_FLUSH_SECONDS = 5.0  # --once: the most it waits for its Events to be posted


def banner(config: Config, configuration: client.Configuration) -> str:
    return f"starting k8s-hosts-controller {__version__}: server {configuration.host}, {config.describe()}"


def run_controller(
    config: Config, configuration: client.Configuration, record: ClusterRecord | None = None
) -> int:
    log.info(banner(config, configuration))
    return asyncio.run(_run(config, configuration, record))


async def _run(config: Config, configuration: client.Configuration, record: ClusterRecord | None) -> int:
    metrics, health = Metrics(), Health()
    cluster, mode = config.cluster, config.mode
    hosts = config.file.open()
    hosts.record = record  # replaces any other cluster's record on the first write
    resources = discovery.with_optional(
        configuration, sources.resources_for(cluster.sources), sources.optional_for(cluster.sources)
    )
    namespaces: list[str | None] = [None] if cluster.all_namespaces else list(cluster.namespaces)
    # A cluster-scoped resource (Namespaces) is watched once, cluster-wide.
    scopes = list(dict.fromkeys((r.id, ns if r.namespaced else None) for r in resources for ns in namespaces))
    writer: Writer | None = None
    state = ClusterState(scopes, on_change=lambda: writer.wake() if writer else None)
    events = EventQueue(kube.EventPoster(configuration).post)  # posted off the write path
    writer = Writer(
        state,
        hosts,
        metrics=metrics,
        health=health,
        settings=config.sync,
        mode=mode,
        postwrite=config.postwrite,
        kinds=tuple(r.kind for r in resources),
        resolver=Resolver.from_settings(config.resolve),
        post_event=events.offer,
    )
    stop_http = None
    address = parse_bind_address(config.serve.bind_address)
    if address is not None and not mode.dry_run:
        try:
            stop_http = serve(address, metrics, health)
        except OSError as err:
            log.error(
                "cannot serve metrics on %s: %s (pass another --metrics-bind-address, or 0)",
                config.serve.bind_address,
                err,
            )
            return 2
        log.info("serving /metrics, /healthz and /readyz on %s", stop_http.url)

    streams = StreamHealth(health, scopes)
    metrics.ready.set_function(lambda: float(health.serving))
    unobserve = handlers.observe_listings(state, resources)
    unobserve_requests = handlers.observe_requests(streams, resources, configuration.host)
    api_health = ApiHealth(health, configuration.host)
    unobserve_api = handlers.observe_api(api_health)
    connect = functools.partial(kube.load, cluster.kubeconfig, cluster.context)
    registry = handlers.build_registry(state, resources, connect)
    stop_flag, ready_flag = asyncio.Event(), asyncio.Event()
    signalled = asyncio.Event()
    install_signals = signal_handlers(signalled, stop_flag)
    install_signals()  # kopf installs its own when it starts; ours replace them at once (start_operator)

    async def start_operator(run_ready: asyncio.Event) -> None:
        """kopf.operator() in its two public steps, to put our signal handlers back over the ones kopf's
        start installs before any of its tasks runs (a signal is never kopf's alone, restarts included)."""
        current = asyncio.current_task()
        existing = {t for t in asyncio.all_tasks() if t is not current}
        tasks = await kopf.spawn_tasks(
            registry=registry,
            settings=handlers.operator_settings(config.log.verbose),
            standalone=True,
            clusterwide=cluster.all_namespaces,
            namespaces=cluster.namespaces,
            stop_flag=stop_flag,
            ready_flag=run_ready,
        )
        install_signals()
        await kopf.run_tasks(tasks, ignored=existing)

    operator = asyncio.create_task(
        operate(start_operator, stop_flag, ready_flag, health, api_health, streams, install_signals),
        name="kopf operator",
    )
    writer_task = asyncio.create_task(writer.run(), name="hosts writer")
    heartbeat = asyncio.create_task(_heartbeat(health), name="heartbeat")
    poster = asyncio.create_task(events.run(), name="event poster")
    one_shot = mode.one_shot
    watchdog = asyncio.create_task(
        _check_listing(ready_flag, state, streams, api_health, health, one_shot), name="listing check"
    )
    release = asyncio.create_task(_release_after_listing(health), name="memory release")
    # The block removed or changed by another program is noticed within a second, not at the next resync.
    watch = (
        None
        if one_shot
        else asyncio.create_task(BlockWatch(hosts, writer, health, metrics).run(), name="block watch")
    )
    owner_check = None
    if cluster.owner_daemonset and mode.cleanup_on_exit and not one_shot:
        owner_check = asyncio.create_task(
            asyncio.to_thread(_check_owner, cluster.owner_daemonset, configuration), name="owner check"
        )

    exit_code = 0
    return_without_cleanup = False
    try:
        done, _ = await asyncio.wait(
            {operator, writer_task, watchdog, asyncio.create_task(signalled.wait(), name="signal")},
            return_when=asyncio.FIRST_COMPLETED,
        )
        if operator in done:
            # operate() restarts kopf when it fails: it returns only when kopf stopped on our stop flag (or,
            # in the instant before ours are back, on a signal to kopf's own handlers).
            if operator.exception() is not None:  # a fault of operate() itself: keep the entries
                log.error(
                    "running kopf failed: %r; exiting without removing the entries (they are still right)",
                    operator.exception(),
                )
                return_without_cleanup = True
                exit_code = 1
            elif not signalled.is_set():
                log.info("signal received, shutting down")
        elif writer_task in done and writer_task.exception() is not None:
            log.error("the writer failed: %r", writer_task.exception())
            exit_code = 1
        elif writer.error is not None:  # --once / --dry-run gave up on a file error (logged)
            exit_code = 1
        elif watchdog in done:  # --once / --dry-run without a listing: why
            if watchdog.exception() is not None:
                log.error("the listing check failed: %r", watchdog.exception())
            else:
                waited, cause = watchdog.result()
                log.error("giving up after %.0fs without a listing: %s", waited, cause)
            exit_code = 1
    finally:
        unobserve_api()  # kopf's shutdown closes its session: no failure of the API server to report
        writer_task.cancel()
        stop_flag.set()
        heartbeat.cancel()
        watchdog.cancel()
        release.cancel()
        if watch is not None:
            watch.cancel()  # before the shutdown cleanup removes the block
        if owner_check is not None:
            owner_check.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(operator, timeout=10)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer_task
        if mode.once:
            await events.flush(EVENTS_FLUSH_SECONDS)  # the refusals of its one sync
        poster.cancel()
        unobserve()
        unobserve_requests()
        if stop_http:
            stop_http()
        if mode.cleanup_on_exit and not (one_shot or return_without_cleanup):
            # Off the event loop, and bounded by the request's and the lock's timeouts.
            cleanup = functools.partial(_cleanup, hosts, cluster.owner_daemonset, configuration)
            exit_code = await asyncio.to_thread(cleanup) or exit_code
    return exit_code


def _check_owner(owner: str, configuration: client.Configuration) -> None:
    """At start: warn when the stop would already remove the block (a wrong name, no get on it)."""
    warning = startup_warning(owner, ask(owner, configuration))
    if warning:
        log.warning("%s", warning)


def _cleanup(hosts: HostsFile, owner: str | None, configuration: client.Configuration) -> int:
    if owner is not None:  # in a cluster: only when the release is going (controller/cluster/owner.py)
        decision = ask(owner, configuration)
        log.info("%s", decision.reason)
        if not decision.remove:
            return 0
    try:
        result = hosts.cleanup()
    except LockTimeout as err:  # the metrics endpoint is already closed: the log says it
        log.error(
            "cleanup gave up: %s; the block is left in the file: run k8s-hosts-controller --cleanup "
            "once the lock is released",
            err,
        )
        return 1
    except HostsFileError as err:
        log.error("cleanup failed: %s", err)
        return 1
    log.info(
        "removed the %s block from %s" if result.changed else "no %s block left in %s",
        hosts.marker,
        hosts.path,
    )
    return 0


async def _check_listing(
    ready: asyncio.Event,
    state: ClusterState,
    streams: StreamHealth,
    api: ApiHealth,
    health: Health,
    one_shot: bool,
) -> tuple[float, str]:
    """Until the first listing: say what holds it back. A failing or unanswered API request is named as it
    is (controller/cluster/apihealth.py; kopf only logs and retries); with --once/--dry-run, after
    ONE_SHOT_BOUND seconds of that, return (seconds, cause): the run gives up. Only while requests work does a
    listing that never comes blame the listing hook, a kopf internal (docs/architecture.md, decision 10): no
    listing of a scope LISTING_BOUND seconds after kopf started means a kopf release changed it. Returns
    only in one-shot mode; otherwise keeps refreshing the API health (a request that never answers
    reports nothing by itself).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    kopf_ready_at: float | None = None
    hook_blamed = False
    while True:
        await asyncio.sleep(WATCHDOG_INTERVAL)
        api.refresh()
        if state.listed:
            continue
        now = loop.time()
        cause = api.cause()
        if cause is not None or streams.failing or api.awaiting_collection():
            if one_shot and cause is not None and now - started >= ONE_SHOT_BOUND:
                return now - started, cause
            continue
        if ready.is_set() and kopf_ready_at is None:
            kopf_ready_at = now
        unheard = state.unheard_scopes()
        if hook_blamed or not unheard or kopf_ready_at is None or now - kopf_ready_at < LISTING_BOUND:
            continue
        scopes = ", ".join(f"{resource.plural} in {ns or 'all namespaces'}" for resource, ns in unheard)
        cause = (
            f"no listing of {scopes} observed {LISTING_BOUND:.0f}s after kopf "
            f"{importlib.metadata.version('kopf')} started although the API server answers: the listing "
            "hook (controller/cluster/listing.py, on kopf's watch stream) does not fire with this kopf "
            "version, so nothing is written; install the kopf version pyproject.toml allows"
        )
        health.set(Reason.LISTING_HOOK, cause)
        hook_blamed = True
        if one_shot:
            return now - started, cause
        log.error("%s; staying not ready", cause)


async def _release_after_listing(health: Health) -> None:
    """Once the initial listing is in the file, give the memory its parsing took back to the OS."""
    while not health.ready:
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)  # kopf's per-object workers of the listing exit first (queueing.idle_timeout)
    memory.release()


async def _heartbeat(health: Health) -> None:
    while True:
        health.beat()
        await asyncio.sleep(HEARTBEAT_SECONDS)
