"""The controller's settings: one dataclass whose fields carry their default, flag, help and environment
(docs/architecture.md, decision 9).

Every flag falls back to the environment variable ``K8S_HOSTS_CONTROLLER_<FLAG>`` (upper case, ``-`` to
``_``); flags win over the environment. controller/cli.py builds its argument parser from these fields and
hands the parsed values to :func:`resolve`, which applies the environment fallback (one table-driven loop),
validates, and returns a :class:`Config`. The start-up banner (:meth:`Config.describe`) lists every field.

Adding a flag: add a field to Config with :func:`setting` (and a check in controller/checks.py, or in
:func:`_validate` when it needs other values, if it needs one; a duration also its range, a Span). The
module is above 350 lines on purpose: it is the table of every setting, and a field with its default, flag,
help and range is easier to review in one place than split up. Usage errors raise :class:`UsageError`: one
line naming the problem and the fix; the command line exits 2. Every value is checked, the environment's
even when a flag overrides it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from controller.checks import (
    Span,
    UsageError,
    check_namespaces,
    check_resolves,
    check_value,
    split_list,
)
from controller.cluster.sources import SOURCES
from controller.durations import parse_duration
from controller.engine.block import DEFAULT_MARKER
from controller.engine.hostsfile import DEFAULT_MAX_SIZE, WriteMode
from controller.engine.sizes import parse_size, size_flag
from controller.sync.options import WriterOptions
from controller.sync.share import MAX_BLOCK_BYTES, MAX_BLOCK_LINES

PROG = "k8s-hosts-controller"
ENV_PREFIX = "K8S_HOSTS_CONTROLLER_"

# The groups of `--help`, in this order.
WATCH, HOSTS_FILE, MODES, OPERATIONS = "what to watch", "the hosts file", "modes", "operations"
GROUPS = (WATCH, HOSTS_FILE, MODES, OPERATIONS)

# text: a string as given; path: a Path; seconds: a float; choice: one of `choices`; switch: a flag without a
# value (true/false in the environment); list: repeatable, comma lists allowed; count: a whole number >= 1;
# size: bytes, e.g. 64Mi.
Kind = Literal["text", "path", "seconds", "choice", "switch", "list", "count", "size"]

# What the environment may say for a boolean flag.
FALSE_WORDS = ("", "0", "false", "no", "off")
TRUE_WORDS = ("1", "true", "yes", "on")


# The range of each duration (seconds). Wide enough for any real use, narrow enough that a typo or a hostile
# value cannot stop the file from catching up or make an idle controller spin (docs/reliability.md).
SYNC_DELAY = Span(0, 60)  # a burst window longer than a minute only hides changes
SYNC_MAX_DELAY = Span(0, 300)  # the most a stream of changes may hold the file back: five minutes
# Each resync reads the file: once a second at most (a changed block is noticed within a second anyway), daily
# at least (longer is "off", which 0 says).
RESYNC_INTERVAL = Span(1, 86400, off=True)
RESOLVE_TIMEOUT = Span(0.1, 60)  # a real lookup takes milliseconds; every sync may wait this long for one
POST_WRITE_TIMEOUT = Span(0.1, 3600)  # a DNS cache flush takes a second; an hour is a daemon, not a step


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")


@dataclass(frozen=True)
class Setting:
    """How one Config field is given: its flag, what kind of value it takes, its help."""

    flag: str
    help: str
    group: str
    kind: Kind = "text"
    choices: tuple[str, ...] = ()
    negated: bool = False  # a switch that turns the field off (--no-cleanup-on-exit)
    metavar: str | None = None  # the value's name in --help (seconds: SECONDS)
    shown_default: str | None = None  # what --help says instead of the default value
    span: Span | None = None  # seconds: the range allowed (every duration has one)

    @property
    def env(self) -> str:
        return env_name(self.flag)

    def from_env(self, environ: Mapping[str, str], default: Any) -> Any:
        """The value the environment gives, or None when it gives none (then the default applies). Empty
        (or blanks) counts as not set, a template's unset value, for every variable but the hosts file's,
        which must never silently become the default (/etc/hosts)."""
        raw = environ.get(self.env)
        if raw is None or (not raw.strip() and self.kind != "path"):
            return None
        if self.kind == "switch":
            word = raw.strip().lower()
            if word not in FALSE_WORDS + TRUE_WORDS:
                raise UsageError(f"{self.env}={word!r} is not a boolean (use true or false)")
            return word in TRUE_WORDS
        if self.kind == "list":
            return [raw]
        if self.kind == "seconds":  # the one duration syntax: 90, 500ms, 2m, 1h30m (controller/durations.py)
            try:
                return parse_duration(raw)
            except ValueError as err:
                raise UsageError(f"{self.env}: {err}") from None
        if self.kind == "choice" and raw not in self.choices:
            raise UsageError(f"{self.env}={raw!r} is not one of {', '.join(self.choices)}")
        return raw

    def help_text(self, default: Any) -> str:
        shown = self.shown_default if self.shown_default is not None else _show(default)
        if self.kind == "switch" or not shown or shown == "-":
            return self.help
        allowed = f"; {self.span}" if self.span is not None else ""
        return f"{self.help} (default: {shown}{allowed})"


def setting(default: Any, flag: str, help: str, group: str, **how: Any) -> Any:
    """A Config field: its default, and how the command line and the environment give it."""
    return dataclasses.field(default=default, metadata={"setting": Setting(flag, help, group, **how)})


def repeatable(default: tuple[str, ...], flag: str, help: str, group: str, metavar: str) -> Any:
    """A list setting: the flag may be repeated and takes comma lists (so does its environment variable)."""
    return setting(
        default, flag, f"{help} (repeatable, or a comma list)", group, kind="list", metavar=metavar
    )


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value) or "-"
    return "-" if value is None else str(value)


@dataclass(frozen=True)
class Config:
    # -- what to watch
    namespaces: tuple[str, ...] = setting(
        (), "--namespaces", "namespaces to watch, comma-separated (or --all-namespaces)", WATCH, metavar="NS"
    )
    all_namespaces: bool = setting(False, "--all-namespaces", "watch all namespaces", WATCH, kind="switch")
    sources: tuple[str, ...] = repeatable(
        ("ingress",), "--source", f"where names come from: {', '.join(SOURCES)}", WATCH, "NAME"
    )
    ingress_classes: tuple[str, ...] = repeatable(
        (), "--ingress-class", "only Ingresses of this class", WATCH, "CLASS"
    )
    domain_filters: tuple[str, ...] = repeatable(
        (), "--domain-filter", "only hostnames under this suffix", WATCH, "SUFFIX"
    )
    kubeconfig: str | None = setting(
        None,
        "--kubeconfig",
        "kubeconfig file",
        WATCH,
        metavar="PATH",
        shown_default="$KUBECONFIG, ~/.kube/config, else in-cluster",
    )
    context: str | None = setting(
        None, "--context", "kubeconfig context", WATCH, metavar="NAME", shown_default="the current one"
    )
    # -- the hosts file
    hosts_file: Path = setting(
        Path("/etc/hosts"), "--hosts-file", "file to manage", HOSTS_FILE, kind="path", metavar="PATH"
    )
    marker: str = setting(
        DEFAULT_MARKER,
        "--marker",
        "the block is #### BEGIN <NAME> #### ... #### END <NAME> ####",
        HOSTS_FILE,
        metavar="NAME",
    )
    write_mode: str = setting(
        WriteMode.AUTO.value,
        "--write-mode",
        "rename (atomic), inplace (bind-mounted files), auto: rename, in place when the file is bind-mounted "
        "(e.g. into a kind node) or rename fails",
        HOSTS_FILE,
        kind="choice",
        choices=tuple(m.value for m in WriteMode),
    )
    cleanup_on_exit: bool = setting(
        True,
        "--no-cleanup-on-exit",
        "keep the block when stopped by SIGTERM/SIGINT/SIGHUP",
        HOSTS_FILE,
        kind="switch",
        negated=True,
    )
    owner_daemonset: str | None = setting(
        None,
        "--owner-daemonset",
        "in a cluster (the chart sets it): stopping and --cleanup remove the block only when this DaemonSet "
        "is gone or being deleted, not when its pod is replaced",
        HOSTS_FILE,
        metavar="NS/NAME",
    )
    sync_delay: float = setting(
        WriterOptions.sync_delay,
        "--sync-delay",
        "coalescing window of a burst: once changes come in while a write is made, wait until none came for "
        "this long before the next write (the first change after a quiet period is written at once)",
        HOSTS_FILE,
        kind="seconds",
        span=SYNC_DELAY,
    )
    sync_max_delay: float = setting(
        WriterOptions.sync_max_delay,
        "--sync-max-delay",
        "the longest a stream of changes may postpone a write",
        HOSTS_FILE,
        kind="seconds",
        span=SYNC_MAX_DELAY,
    )
    resync_interval: float = setting(
        WriterOptions.resync_interval,
        "--resync-interval",
        "re-read the file and re-resolve LB hostnames this often; 0 disables",
        HOSTS_FILE,
        kind="seconds",
        span=RESYNC_INTERVAL,
    )
    resolve_timeout: float = setting(
        2.0,
        "--resolve-timeout",
        "bound for resolving a load-balancer hostname (e.g. localhost, cloud LB names)",
        HOSTS_FILE,
        kind="seconds",
        span=RESOLVE_TIMEOUT,
    )
    max_block_lines: int = setting(
        MAX_BLOCK_LINES,
        "--max-block-lines",
        "bound on the block's lines, shared fairly by the objects; an object over its share has the rest of "
        "its names refused (block-full)",
        HOSTS_FILE,
        kind="count",
        metavar="N",
    )
    max_block_bytes: int = setting(
        MAX_BLOCK_BYTES,
        "--max-block-bytes",
        "bound on the bytes of the block's lines, shared like --max-block-lines",
        HOSTS_FILE,
        kind="count",
        metavar="N",
    )
    max_hosts_file_size: int = setting(
        DEFAULT_MAX_SIZE,
        "--max-hosts-file-size",
        "refuse a hosts file bigger than this (bytes, or Ki, Mi, Gi: e.g. 128Mi); it is never loaded",
        HOSTS_FILE,
        kind="size",
        metavar="SIZE",
        shown_default=size_flag(DEFAULT_MAX_SIZE),
    )
    post_write_command: str | None = setting(
        None,
        "--post-write-command",
        "shell command run after each write, e.g. a DNS cache flush on macOS",
        HOSTS_FILE,
        metavar="CMD",
    )
    post_write_timeout: float = setting(
        WriterOptions.post_write_timeout,
        "--post-write-timeout",
        "the post-write command is killed after this long",
        HOSTS_FILE,
        kind="seconds",
        span=POST_WRITE_TIMEOUT,
    )
    cluster_name: str | None = setting(
        None,
        "--cluster-name",
        "the cluster's name, recorded in the block (`status` shows which cluster wrote it)",
        HOSTS_FILE,
        metavar="NAME",
        shown_default="the kubeconfig context's name; none in-cluster",
    )
    cluster_server: str | None = setting(
        None,
        "--cluster-server",
        "the API server URL as this machine's host reaches it, recorded in the block: `status` and `wait` "
        "call the block stale when it no longer answers",
        HOSTS_FILE,
        metavar="URL",
        shown_default="the kubeconfig's server; none in-cluster",
    )
    node_name: str | None = setting(
        None,
        "--node-name",
        "the node this runs on, recorded in the block (the chart sets it from the pod's spec.nodeName)",
        HOSTS_FILE,
        metavar="NAME",
    )
    # -- modes
    cleanup: bool = setting(False, "--cleanup", "remove the block and exit", MODES, kind="switch")
    once: bool = setting(
        False,
        "--once",
        "sync once after the first complete listing and exit (block kept)",
        MODES,
        kind="switch",
    )
    dry_run: bool = setting(
        False, "--dry-run", "print the block and a diff of the file, change nothing", MODES, kind="switch"
    )
    # -- operations
    metrics_bind_address: str = setting(
        "127.0.0.1:8080",
        "--metrics-bind-address",
        "serve /metrics, /healthz, /readyz here (:8080 for every interface, port 0 for any free port); "
        "0 disables",
        OPERATIONS,
        metavar="ADDR",
    )
    log_format: str = setting(
        "text",
        "--log-format",
        "log lines as text or JSON",
        OPERATIONS,
        kind="choice",
        choices=("text", "json"),
    )
    verbose: bool = setting(False, "--verbose", "debug logging (including kopf's)", OPERATIONS, kind="switch")

    @property
    def scope(self) -> str:
        return "all namespaces" if self.all_namespaces else ",".join(self.namespaces)

    def describe(self) -> str:
        """Every setting as `flag=value`, in --help order: the start-up banner's body."""
        parts = []
        for field, spec in settings():
            value = getattr(self, field.name)
            shown = _show(not value if spec.negated else value)
            if spec.kind == "size":
                shown = size_flag(value)
            if field.name == "cleanup_on_exit" and (self.once or self.dry_run):
                # --once and --dry-run keep the file as they leave it: never say cleanup is on.
                shown = f"true (implied by {'--dry-run' if self.dry_run else '--once'})"
            parts.append(f"{spec.flag.lstrip('-')}={shown}")
        return ", ".join(parts)


def settings() -> list[tuple[dataclasses.Field, Setting]]:
    """The Config fields with how each is given, in declaration (= --help) order."""
    return [(f, f.metadata["setting"]) for f in dataclasses.fields(Config)]


def resolve(given: Mapping[str, Any], environ: Mapping[str, str]) -> Config:
    """The Config from the command line's values (field name -> value, None when not given) and the
    environment; raises UsageError.

    Every value is checked on its own, the environment's even when the command line overrides it: a bad
    value is reported, not silently carried along to the next run without that flag. An environment
    variable set to the empty string counts as not set (a template's empty value), except for
    the hosts file, which must never silently become the default.
    """
    values: dict[str, Any] = {}
    from_env: dict[str, Any] = {}
    labels: dict[str, str] = {}  # where the value in use came from, for the messages
    for field, spec in settings():
        env_value = spec.from_env(environ, field.default)
        from_env[field.name] = env_value
        flag_value = given.get(field.name)
        if flag_value is not None and spec.kind != "switch":
            check_value(field.name, spec.kind, flag_value, spec.flag, field.default, spec.span)
        if env_value is not None and spec.kind != "switch":
            check_value(field.name, spec.kind, env_value, env_label(spec), field.default, spec.span)
        if spec.kind == "count":  # checked on their own too, the environment's even when overridden
            flag_value = flag_value if flag_value is None else _count(flag_value, spec.flag, field.default)
            env_value = env_value if env_value is None else _count(env_value, env_label(spec), field.default)
        value, labels[field.name] = (
            (flag_value, spec.flag) if flag_value is not None else (env_value, env_label(spec))
        )
        if spec.kind == "switch":
            value = bool(value) != spec.negated if value is not None else field.default
        elif spec.kind == "list":
            value = split_list(value) or field.default
        elif spec.kind == "path" and value is not None:
            value = Path(value)
        elif spec.kind == "size" and value is not None:
            value = parse_size(value)
        values[field.name] = field.default if value is None else value

    # The command line wins as a whole: --namespaces on it overrides an environment --all-namespaces.
    if given.get("namespaces") is None and not given.get("all_namespaces"):
        raw_namespaces = from_env["namespaces"]
        values["all_namespaces"] = bool(from_env["all_namespaces"])
    else:
        raw_namespaces = given.get("namespaces")
        values["all_namespaces"] = bool(given.get("all_namespaces"))
    values["namespaces"] = split_list([raw_namespaces] if raw_namespaces is not None else None)
    values["post_write_command"] = values["post_write_command"] or None
    for name in ("cluster_name", "cluster_server", "node_name"):
        values[name] = values[name] or None  # a template's empty value: not known
    values["owner_daemonset"] = values["owner_daemonset"] or None  # empty: a template's unset value
    # Every name is checked, with --cleanup too, like every other value given to it; only what to watch
    # (the scope rules in _validate) does not matter to --cleanup.
    ns = _spec("namespaces")
    for raw, label in ((given.get("namespaces"), ns.flag), (from_env["namespaces"], env_label(ns))):
        check_namespaces(raw, label)
    _validate(values, raw_namespaces, labels)
    values["sync_max_delay"] = max(values["sync_max_delay"], values["sync_delay"])
    return Config(**values)


def _count(raw: str, label: str, default: int) -> int:
    """A bound given as text: a whole number >= 1 in ASCII digits (``_`` allowed between them)."""
    text = raw.strip()
    if not re.fullmatch(r"[0-9]+(_[0-9]+)*", text) or int(text) < 1:
        raise UsageError(f"{label} must be a whole number >= 1, got {raw!r} (e.g. {default})")
    return int(text)


def env_label(spec: Setting) -> str:
    """How messages name an environment variable: with the flag it stands for."""
    return f"{spec.env} ({spec.flag})"


def _validate(values: dict[str, Any], raw_namespaces: str | None, labels: Mapping[str, str]) -> None:
    """The checks that need more than one value (each value on its own: controller/checks.py)."""
    namespaces, all_namespaces = values["namespaces"], values["all_namespaces"]
    if not values["cleanup"]:
        if all_namespaces and namespaces:
            raise UsageError("--namespaces and --all-namespaces are mutually exclusive (use one of them)")
        if raw_namespaces is not None and not namespaces and not all_namespaces:
            raise UsageError(
                "--namespaces is empty (give a comma-separated list, e.g. --namespaces tyk,tyk-dp-1)"
            )
        if not all_namespaces and not namespaces:
            raise UsageError(
                "one of --namespaces or --all-namespaces is required (e.g. --namespaces tyk,tyk-dp-1)"
            )
    if sum((values["cleanup"], values["once"], values["dry_run"])) > 1:
        raise UsageError("--cleanup, --once and --dry-run are mutually exclusive (pick one)")
    if not (values["cleanup"] or values["dry_run"]):  # these two serve no metrics
        check_resolves(values["metrics_bind_address"], labels["metrics_bind_address"])


def _spec(name: str) -> Setting:
    return Config.__dataclass_fields__[name].metadata["setting"]
