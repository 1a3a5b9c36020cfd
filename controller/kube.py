"""Cluster credentials (--kubeconfig, --context, or in-cluster) and Warning Events on refused hosts.

The official client parses kubeconfig files (exec plugins, merged KUBECONFIG lists, in-cluster tokens) so
we do not; kopf gets the same credentials through its login handler (controller/handlers.py).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
from pathlib import Path

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from controller.model import Rejection, Snapshot

log = logging.getLogger("k8s-hosts-controller")


class KubeconfigError(Exception):
    """A usage error: str(e) is one line naming the problem and the fix."""


def default_kubeconfig() -> str | None:
    env = os.environ.get("KUBECONFIG")
    if env:
        return env
    home = Path("~/.kube/config").expanduser()
    return str(home) if home.exists() else None


def load(kubeconfig: str | None, context: str | None) -> client.Configuration:
    """Client configuration from a kubeconfig (flag, KUBECONFIG, ~/.kube/config) or the in-cluster token."""
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
            raise KubeconfigError(f"kubeconfig {part} does not exist (pass --kubeconfig or set KUBECONFIG)")
    try:
        contexts, _ = config.list_kube_config_contexts(config_file=path)
    except ConfigException as err:
        raise KubeconfigError(f"kubeconfig {path} is not usable: {err}") from None
    names = [c["name"] for c in contexts]
    if context and context not in names:
        raise KubeconfigError(
            f"context {context!r} not found in {path} (available: {', '.join(names) or 'none'}; "
            "see kubectl config get-contexts)"
        )
    try:
        config.load_kube_config(
            config_file=path, context=context, client_configuration=configuration, persist_config=False
        )
    except (ConfigException, OSError) as err:
        raise KubeconfigError(f"kubeconfig {path}: {err}") from None
    return configuration


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
    """Posts one Warning Event per refused host and change, so `kubectl describe ingress` says why."""

    REASON = "HostRefused"

    def __init__(self, configuration: client.Configuration) -> None:
        self._api = client.CoreV1Api(client.ApiClient(configuration))
        self._host = socket.gethostname()
        self._warned_forbidden = False

    async def post(self, snap: Snapshot, rejection: Rejection) -> None:
        await asyncio.to_thread(self._post, snap, rejection)

    def _post(self, snap: Snapshot, rejection: Rejection) -> None:
        now = datetime.datetime.now(datetime.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{snap.name}.", namespace=snap.namespace),
            involved_object=client.V1ObjectReference(
                api_version=snap.api_version,
                kind=snap.kind,
                name=snap.name,
                namespace=snap.namespace,
                uid=snap.uid,
            ),
            reason=self.REASON,
            message=f"{rejection.host}: {rejection.message} [{rejection.reason}]",
            type="Warning",
            source=client.V1EventSource(component="k8s-hosts-controller", host=self._host),
            reporting_component="k8s-hosts-controller",
            reporting_instance=self._host,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        try:
            self._api.create_namespaced_event(snap.namespace, event)
        except client.ApiException as err:
            if err.status == 403 and not self._warned_forbidden:
                self._warned_forbidden = True
                log.warning(
                    "cannot post Events in %s (forbidden): grant create on events to see refusals "
                    "in kubectl describe",
                    snap.namespace,
                )
            elif err.status != 403:
                log.warning("posting an Event for %s failed: %s %s", snap.owner, err.status, err.reason)
        except Exception as err:  # an unreachable API server must not break the writer
            log.warning("posting an Event for %s failed: %s", snap.owner, err)
