"""The controller's settings: :class:`Config`, made of one group per component (``config.file``,
``config.sync``, ``config.cluster``, ...; each component is handed its group whole), and the table of the
flags that set them (docs/architecture.md, decision 9).

Every flag falls back to the environment variable ``K8S_HOSTS_CONTROLLER_<FLAG>`` (upper case, ``-`` to
``_``); flags win over the environment. controller/cli.py builds its argument parser from these fields and
hands the parsed values to :func:`resolve`, which applies the environment fallback (one table-driven loop),
validates, and returns a :class:`Config`. The start-up banner (:meth:`Config.describe`) lists every field.

Adding a flag: add a field with its default to the group of the component that uses it (the group's
dataclass holds the only default), and a :class:`Setting` naming it in :data:`SETTINGS` (flag, help, kind;
a check in controller/checks.py, or in :func:`_validate` when it needs other values, if it needs one; a
duration also its range, a Span). The module is above 350 lines on purpose: it is the table of every flag,
easier to review in one place than split up. Usage errors raise :class:`UsageError`: one
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
from controller.cluster.settings import ClusterSettings
from controller.cluster.sources import SOURCES
from controller.durations import parse_duration
from controller.engine.hostsfile import WriteMode
from controller.engine.settings import FileSettings
from controller.engine.sizes import parse_size, size_flag
from controller.serve.httpserve import ServeSettings
from controller.serve.logs import LogSettings
from controller.sync.options import ModeSettings, SyncSettings
from controller.sync.postwrite import PostWriteSettings
from controller.sync.resolve import ResolveSettings

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
class Config:
    """Every setting, by the component that uses it."""

    cluster: ClusterSettings = dataclasses.field(default_factory=ClusterSettings)
    file: FileSettings = dataclasses.field(default_factory=FileSettings)
    sync: SyncSettings = dataclasses.field(default_factory=SyncSettings)
    resolve: ResolveSettings = dataclasses.field(default_factory=ResolveSettings)
    postwrite: PostWriteSettings = dataclasses.field(default_factory=PostWriteSettings)
    mode: ModeSettings = dataclasses.field(default_factory=ModeSettings)
    serve: ServeSettings = dataclasses.field(default_factory=ServeSettings)
    log: LogSettings = dataclasses.field(default_factory=LogSettings)

    def describe(self) -> str:
        """Every setting as `flag=value`, in --help order: the start-up banner's body."""
        parts = []
        for spec in SETTINGS:
            value = self.get(spec.path)
            shown = _show(not value if spec.negated else value)
            if spec.kind == "size":
                shown = size_flag(value)
            if spec.path == "mode.cleanup_on_exit" and self.mode.one_shot:
                # --once and --dry-run keep the file as they leave it: never say cleanup is on.
                shown = f"true (implied by {'--dry-run' if self.mode.dry_run else '--once'})"
            parts.append(f"{spec.flag.lstrip('-')}={shown}")
        return ", ".join(parts)

    def get(self, path: str) -> Any:
        """The value of a setting by its path, e.g. ``file.marker``."""
        group, name = path.split(".")
        return getattr(getattr(self, group), name)


@dataclass(frozen=True)
class Setting:
    """How the setting at ``path`` (group.field of Config) is given: its flag, what kind of value it takes,
    its help. Its default is the group's field default, nowhere else."""

    path: str
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

    @property
    def field(self) -> dataclasses.Field:
        """The group's dataclass field: its default is the setting's."""
        group, name = self.path.split(".")
        return GROUP_TYPES[group].__dataclass_fields__[name]

    @property
    def default(self) -> Any:
        return self.field.default

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


GROUP_TYPES: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def repeatable(path: str, flag: str, help: str, group: str, metavar: str) -> Setting:
    """A list setting: the flag may be repeated and takes comma lists (so does its environment variable)."""
    return Setting(path, flag, f"{help} (repeatable, or a comma list)", group, kind="list", metavar=metavar)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value) or "-"
    return "-" if value is None else str(value)


# Every flag, in --help (and banner) order; each names the group field it sets.
SETTINGS: tuple[Setting, ...] = (
    # -- what to watch
    Setting(
        "cluster.namespaces",
        "--namespaces",
        "namespaces to watch, comma-separated (or --all-namespaces)",
        WATCH,
        metavar="NS",
    ),
    Setting("cluster.all_namespaces", "--all-namespaces", "watch all namespaces", WATCH, kind="switch"),
    repeatable("cluster.sources", "--source", f"where names come from: {', '.join(SOURCES)}", WATCH, "NAME"),
    repeatable("sync.ingress_classes", "--ingress-class", "only Ingresses of this class", WATCH, "CLASS"),
    repeatable("sync.domain_filters", "--domain-filter", "only hostnames under this suffix", WATCH, "SUFFIX"),
    Setting(
        "cluster.kubeconfig",
        "--kubeconfig",
        "kubeconfig file",
        WATCH,
        metavar="PATH",
        shown_default="$KUBECONFIG, ~/.kube/config, else in-cluster",
    ),
    Setting(
        "cluster.context",
        "--context",
        "kubeconfig context",
        WATCH,
        metavar="NAME",
        shown_default="the current one",
    ),
    # -- the hosts file
    Setting("file.path", "--hosts-file", "file to manage", HOSTS_FILE, kind="path", metavar="PATH"),
    Setting(
        "file.marker",
        "--marker",
        "the block is #### BEGIN <NAME> #### ... #### END <NAME> ####",
        HOSTS_FILE,
        metavar="NAME",
    ),
    Setting(
        "file.write_mode",
        "--write-mode",
        "rename (atomic), inplace (bind-mounted files), auto: rename, in place when the file is bind-mounted "
        "(e.g. into a kind node) or rename fails",
        HOSTS_FILE,
        kind="choice",
        choices=tuple(m.value for m in WriteMode),
    ),
    Setting(
        "mode.cleanup_on_exit",
        "--no-cleanup-on-exit",
        "keep the block when stopped by SIGTERM/SIGINT/SIGHUP",
        HOSTS_FILE,
        kind="switch",
        negated=True,
    ),
    Setting(
        "cluster.owner_daemonset",
        "--owner-daemonset",
        "in a cluster (the chart sets it): stopping and --cleanup remove the block only when this DaemonSet "
        "is gone or being deleted, not when its pod is replaced",
        HOSTS_FILE,
        metavar="NS/NAME",
    ),
    Setting(
        "sync.delay",
        "--sync-delay",
        "coalescing window of a burst: once changes come in while a write is made, wait until none came for "
        "this long before the next write (the first change after a quiet period is written at once)",
        HOSTS_FILE,
        kind="seconds",
        span=SYNC_DELAY,
    ),
    Setting(
        "sync.max_delay",
        "--sync-max-delay",
        "the longest a stream of changes may postpone a write",
        HOSTS_FILE,
        kind="seconds",
        span=SYNC_MAX_DELAY,
    ),
    Setting(
        "sync.resync_interval",
        "--resync-interval",
        "re-read the file and re-resolve LB hostnames this often; 0 disables",
        HOSTS_FILE,
        kind="seconds",
        span=RESYNC_INTERVAL,
    ),
    Setting(
        "resolve.timeout",
        "--resolve-timeout",
        "bound for resolving a load-balancer hostname (e.g. localhost, cloud LB names)",
        HOSTS_FILE,
        kind="seconds",
        span=RESOLVE_TIMEOUT,
    ),
    Setting(
        "sync.max_block_lines",
        "--max-block-lines",
        "bound on the block's lines, shared fairly by the objects; an object over its share has the rest of "
        "its names refused (block-full)",
        HOSTS_FILE,
        kind="count",
        metavar="N",
    ),
    Setting(
        "sync.max_block_bytes",
        "--max-block-bytes",
        "bound on the bytes of the block's lines, shared like --max-block-lines",
        HOSTS_FILE,
        kind="count",
        metavar="N",
    ),
    Setting(
        "file.max_size",
        "--max-hosts-file-size",
        "refuse a hosts file bigger than this (bytes, or Ki, Mi, Gi: e.g. 128Mi); it is never loaded",
        HOSTS_FILE,
        kind="size",
        metavar="SIZE",
        shown_default=size_flag(FileSettings.max_size),
    ),
    Setting(
        "postwrite.command",
        "--post-write-command",
        "shell command run after each write, e.g. a DNS cache flush on macOS",
        HOSTS_FILE,
        metavar="CMD",
    ),
    Setting(
        "postwrite.timeout",
        "--post-write-timeout",
        "the post-write command is killed after this long",
        HOSTS_FILE,
        kind="seconds",
        span=POST_WRITE_TIMEOUT,
    ),
    Setting(
        "cluster.name",
        "--cluster-name",
        "the cluster's name, recorded in the block (`status` shows which cluster wrote it)",
        HOSTS_FILE,
        metavar="NAME",
        shown_default="the kubeconfig context's name; none in-cluster",
    ),
    Setting(
        "cluster.server",
        "--cluster-server",
        "the API server URL as this machine's host reaches it, recorded in the block: `status` and `wait` "
        "call the block stale when it no longer answers",
        HOSTS_FILE,
        metavar="URL",
        shown_default="the kubeconfig's server; none in-cluster",
    ),
    Setting(
        "cluster.node_name",
        "--node-name",
        "the node this runs on, recorded in the block (the chart sets it from the pod's spec.nodeName)",
        HOSTS_FILE,
        metavar="NAME",
    ),
    # -- modes
    Setting("mode.cleanup", "--cleanup", "remove the block and exit", MODES, kind="switch"),
    Setting(
        "mode.once",
        "--once",
        "sync once after the first complete listing and exit (block kept)",
        MODES,
        kind="switch",
    ),
    Setting(
        "mode.dry_run",
        "--dry-run",
        "print the block and a diff of the file, change nothing",
        MODES,
        kind="switch",
    ),
    # -- operations
    Setting(
        "serve.bind_address",
        "--metrics-bind-address",
        "serve /metrics, /healthz, /readyz here (:8080 for every interface, port 0 for any free port); "
        "0 disables",
        OPERATIONS,
        metavar="ADDR",
    ),
    Setting(
        "log.format",
        "--log-format",
        "log lines as text or JSON",
        OPERATIONS,
        kind="choice",
        choices=("text", "json"),
    ),
    Setting("log.verbose", "--verbose", "debug logging (including kopf's)", OPERATIONS, kind="switch"),
)


def settings() -> list[tuple[dataclasses.Field, Setting]]:
    """Each group field with the flag that sets it, in --help order."""
    return [(spec.field, spec) for spec in SETTINGS]


def resolve(given: Mapping[str, Any], environ: Mapping[str, str]) -> Config:
    """The Config from the command line's values (setting path -> value, None when not given) and the
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
        name = spec.path
        env_value = spec.from_env(environ, field.default)
        from_env[name] = env_value
        flag_value = given.get(name)
        if flag_value is not None and spec.kind != "switch":
            check_value(name, spec.kind, flag_value, spec.flag, field.default, spec.span)
        if env_value is not None and spec.kind != "switch":
            check_value(name, spec.kind, env_value, env_label(spec), field.default, spec.span)
        if spec.kind == "count":  # checked on their own too, the environment's even when overridden
            flag_value = flag_value if flag_value is None else _count(flag_value, spec.flag, field.default)
            env_value = env_value if env_value is None else _count(env_value, env_label(spec), field.default)
        given_as = (flag_value, spec.flag) if flag_value is not None else (env_value, env_label(spec))
        value, labels[name] = given_as
        if spec.kind == "switch":
            value = bool(value) != spec.negated if value is not None else field.default
        elif spec.kind == "list":
            value = split_list(value) or field.default
        elif spec.kind == "path" and value is not None:
            value = Path(value)
        elif spec.kind == "size" and value is not None:
            value = parse_size(value)
        values[name] = field.default if value is None else value

    # The command line wins as a whole: --namespaces on it overrides an environment --all-namespaces.
    if given.get("cluster.namespaces") is None and not given.get("cluster.all_namespaces"):
        raw_namespaces = from_env["cluster.namespaces"]
        values["cluster.all_namespaces"] = bool(from_env["cluster.all_namespaces"])
    else:
        raw_namespaces = given.get("cluster.namespaces")
        values["cluster.all_namespaces"] = bool(given.get("cluster.all_namespaces"))
    values["cluster.namespaces"] = split_list([raw_namespaces] if raw_namespaces is not None else None)
    # A template's empty value: not given (no command, not known, no owner).
    for name in ("postwrite.command", "cluster.name", "cluster.server", "cluster.node_name"):
        values[name] = values[name] or None
    values["cluster.owner_daemonset"] = values["cluster.owner_daemonset"] or None
    # Every name is checked, with --cleanup too, like every other value given to it; only what to watch
    # (the scope rules in _validate) does not matter to --cleanup.
    ns = setting_at("cluster.namespaces")
    given_ns = ((given.get("cluster.namespaces"), ns.flag), (from_env["cluster.namespaces"], env_label(ns)))
    for raw, label in given_ns:
        check_namespaces(raw, label)
    _validate(values, raw_namespaces, labels)
    values["sync.max_delay"] = max(values["sync.max_delay"], values["sync.delay"])
    groups: dict[str, dict[str, Any]] = {group: {} for group in GROUP_TYPES}
    for path, value in values.items():
        group, name = path.split(".")
        groups[group][name] = value
    return Config(**{group: GROUP_TYPES[group](**fields) for group, fields in groups.items()})


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
    namespaces, all_namespaces = values["cluster.namespaces"], values["cluster.all_namespaces"]
    if not values["mode.cleanup"]:
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
    if sum((values["mode.cleanup"], values["mode.once"], values["mode.dry_run"])) > 1:
        raise UsageError("--cleanup, --once and --dry-run are mutually exclusive (pick one)")
    if not (values["mode.cleanup"] or values["mode.dry_run"]):  # these two serve no metrics
        check_resolves(values["serve.bind_address"], labels["serve.bind_address"])


def setting_at(path: str) -> Setting:
    """The flag that sets the setting at ``path``."""
    return next(s for s in SETTINGS if s.path == path)
