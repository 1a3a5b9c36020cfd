"""Cluster credentials (--kubeconfig, --context, or in-cluster) and Warning Events on refused hosts.

The official client parses kubeconfig files (exec plugins, merged KUBECONFIG lists, in-cluster tokens) so
we do not; kopf gets the same credentials through its login handler (controller/cluster/handlers.py).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import logging
import os
import socket
from pathlib import Path

from kubernetes import client, config
from kubernetes.client import rest
from kubernetes.config.config_exception import ConfigException

from controller.model import Snapshot
from controller.sync.events import Notice

log = logging.getLogger(__name__)
REQUEST_TIMEOUT = 10.0  # seconds for one Event request: a hung API server must not hold the queue forever


class KubeconfigError(Exception):
    """A usage error: str(e) is one line naming the problem and the fix."""


def default_kubeconfig() -> str | None:
    env = os.environ.get("KUBECONFIG")
    if env:
        return env
    home = Path("~/.kube/config").expanduser()
    return str(home) if home.exists() else None


def _not_a_file(path: Path) -> str:
    """Why a kubeconfig path is not a file: /dev/null or a directory exists, but is not a kubeconfig."""
    if path.is_dir():
        return "is a directory, not a kubeconfig file"
    if path.exists():
        return "is not a regular file"
    return "does not exist"


def load(
    kubeconfig: str | None, context: str | None, context_label: str = "--context"
) -> client.Configuration:
    """Client configuration from a kubeconfig (flag, KUBECONFIG, ~/.kube/config) or the in-cluster token.
    ``context_label``: how messages name where the context came from (the flag, or its variable)."""
    configuration = client.Configuration()
    path = kubeconfig or default_kubeconfig()
    if path is None:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            try:
                config.load_incluster_config(client_configuration=configuration)
            except ConfigException as err:
                raise KubeconfigError(f"in-cluster configuration failed: {err}") from None
            return configuration
        raise KubeconfigError(
            "no kubeconfig found (pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config; "
            "with sudo keep the environment: sudo -E)"
        )
    for part in path.split(os.pathsep):
        if part and not Path(part).is_file():
            raise KubeconfigError(
                f"kubeconfig {part} {_not_a_file(Path(part))} (pass --kubeconfig or set KUBECONFIG)"
            )
    try:
        contexts, _ = config.list_kube_config_contexts(config_file=path)
        names = [c["name"] for c in contexts]
    except ConfigException as err:
        raise KubeconfigError(f"kubeconfig {path} is not usable: {_one_line(err)}") from None
    except Exception as err:  # bad YAML, binary, `contexts: 5`: the client library raises anything
        raise KubeconfigError(
            f"kubeconfig {path} is not a valid kubeconfig ({type(err).__name__}: {_one_line(err)}); "
            "check it with kubectl config view --kubeconfig " + path
        ) from None
    if context and context not in names:
        raise KubeconfigError(
            f"context {context!r} ({context_label}) not found in {path} "
            f"(available: {', '.join(names) or 'none'}; see kubectl config get-contexts)"
        )
    try:
        config.load_kube_config(
            config_file=path, context=context, client_configuration=configuration, persist_config=False
        )
    except (ConfigException, OSError) as err:
        raise KubeconfigError(f"kubeconfig {path}: {_one_line(err)}") from None
    except Exception as err:
        raise KubeconfigError(
            f"kubeconfig {path} is not a valid kubeconfig ({type(err).__name__}: {_one_line(err)})"
        ) from None
    return configuration


def context_name(kubeconfig: str | None, context: str | None) -> str | None:
    """The name of the kubeconfig context in use (after a successful load()); None in-cluster."""
    path = kubeconfig or default_kubeconfig()
    if path is None:
        return None
    if context:
        return context
    try:
        _, active = config.list_kube_config_contexts(config_file=path)
    except Exception:  # load() has read it already; a name is only a label in the block
        return None
    return (active or {}).get("name")


def _one_line(err: Exception, limit: int = 200) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def auth_headers(configuration: client.Configuration) -> dict[str, str]:
    """The Authorization header of the configuration's credentials (none for client certificates)."""
    token = bearer_token(configuration)
    if token:
        return {"Authorization": f"Bearer {token}"}
    if configuration.username:
        return {"Authorization": configuration.get_basic_auth_token()}
    return {}


def get_once(configuration: client.Configuration, path: str, timeout: float) -> tuple[int, dict]:
    """One GET of PATH, bounded by TIMEOUT seconds in all and never retried: (status, decoded body).
    Raises on a connection, TLS or timeout failure."""
    bounded = copy.copy(configuration)
    bounded.retries = False  # urllib3 would retry a refused or timed-out connection 3 times
    pool = rest.RESTClientObject(bounded)
    try:
        response = pool.request(
            "GET",
            f"{configuration.host}{path}",
            headers={"Accept": "application/json", **auth_headers(configuration)},
            _request_timeout=timeout,
        )
        data = response.read() if hasattr(response, "read") else response.data
    except client.ApiException as err:  # older clients raise on an error status themselves
        if not err.status:
            raise
        return err.status, {}
    finally:
        pool.close()
    try:
        body = json.loads(data or b"{}")
    except ValueError:
        body = {}
    return response.status, body if isinstance(body, dict) else {}


def bearer_token(configuration: client.Configuration) -> str | None:
    if configuration.refresh_api_key_hook is not None:
        configuration.refresh_api_key_hook(configuration)
    value = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get(
        "BearerToken"
    )
    if not value:
        return None
    return value.split(" ", 1)[1] if value.lower().startswith("bearer ") else value


class EventPoster:
    """Posts the Warning Event of a Notice like client-go's recorder: the first time it is created, a repeat
    (a change of the refusal, or the same refusal after a restart or in every --once run) patches the
    existing Event's count, lastTimestamp and message instead of adding another one.

    The Event's name is derived from the object, the reason and this instance, so a new process finds the
    Event of the previous one without listing Events (the RBAC is create and patch only, see chart/); one
    instance per node of a DaemonSet keeps its own count, as client-go's per-source Events do.
    Runs in the EventQueue's thread (controller/sync/events.py): it never blocks the writer.

    Plain JSON requests through the client's REST layer (its TLS and credential set-up), not CoreV1Api:
    importing the generated API class and its models costs ~17 MB of memory (docs/benchmarks.md, notes).
    """

    REASON = "HostRefused"
    COMPONENT = "k8s-hosts-controller"

    def __init__(self, configuration: client.Configuration) -> None:
        self._configuration = configuration
        self._rest: rest.RESTClientObject | None = None  # made on the first Event: most runs post none
        self._host = socket.gethostname()
        self._counts: dict[tuple[str, str], int] = {}  # (namespace, Event name) -> count we last saw
        self._warned_forbidden = False

    def event_name(self, snap: Snapshot, reason: str) -> str:
        digest = hashlib.sha256(f"{snap.uid}|{reason}|{self.COMPONENT}|{self._host}".encode()).hexdigest()
        return f"{snap.name[:200]}.{digest[:16]}"

    def post(self, notice: Notice) -> None:
        snap = notice.snap
        name = self.event_name(snap, notice.reason)
        key = (snap.namespace, name)
        now = datetime.datetime.now(datetime.UTC)
        try:
            if key in self._counts:
                try:
                    self._patch(key, notice, now, self._counts[key] + 1)
                    return
                except client.ApiException as err:
                    if err.status != 404:  # 404: the Event expired (the API server keeps them ~1 h)
                        raise
            try:
                self._request(
                    "POST", f"/api/v1/namespaces/{snap.namespace}/events", self._event(name, notice, now)
                )
                self._counts[key] = 1
            except client.ApiException as err:
                if err.status != 409:
                    raise
                # A previous process (or --once run) created it: learn its count, then add ours.
                current = self._patch(key, notice, now, None)
                self._patch(key, notice, now, (current or 1) + 1)
        except client.ApiException as err:
            if err.status == 403:
                if not self._warned_forbidden:
                    self._warned_forbidden = True
                    log.warning(
                        "cannot post Events in %s (forbidden): grant create and patch on events to see "
                        "refusals in kubectl describe",
                        snap.namespace,
                    )
            else:
                log.warning("posting an Event for %s failed: %s %s", snap.owner, err.status, err.reason)
        except Exception as err:  # an unreachable API server must not break the queue
            log.warning("posting an Event for %s failed: %s", snap.owner, err)

    def _patch(
        self, key: tuple[str, str], notice: Notice, now: datetime.datetime, count: int | None
    ) -> int | None:
        body: dict = {"message": notice.message, "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if count is not None:
            body["count"] = count
        namespace, name = key
        event = self._request("PATCH", f"/api/v1/namespaces/{namespace}/events/{name}", body)
        self._counts[key] = event.get("count") or 1
        return event.get("count")

    def _request(self, method: str, path: str, body: dict) -> dict:
        """One request; an error status raises client.ApiException, as the generated API would."""
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json"
            if method == "POST"
            else "application/strategic-merge-patch+json",
        }
        headers.update(auth_headers(self._configuration))
        if self._rest is None:
            self._rest = rest.RESTClientObject(self._configuration)
        # Older clients raise ApiException on an error status themselves; newer ones return the response.
        response = self._rest.request(
            method,
            f"{self._configuration.host}{path}",
            headers=headers,
            body=body,
            _request_timeout=REQUEST_TIMEOUT,
        )
        data = response.read() if hasattr(response, "read") else response.data
        if not 200 <= response.status < 300:
            raise client.ApiException(status=response.status, reason=response.reason)
        return json.loads(data or b"{}")

    def _event(self, name: str, notice: Notice, now: datetime.datetime) -> dict:
        snap = notice.snap
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": snap.namespace},
            "involvedObject": {
                "apiVersion": snap.api_version,
                "kind": snap.kind,
                "name": snap.name,
                "namespace": snap.namespace,
                "uid": snap.uid,
            },
            "reason": self.REASON,
            "message": notice.message,
            "type": "Warning",
            "source": {"component": self.COMPONENT, "host": self._host},
            "reportingComponent": self.COMPONENT,
            "reportingInstance": self._host,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
