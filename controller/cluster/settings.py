"""The cluster side's settings (``config.cluster``): what to watch, how to reach the API server, the
DaemonSet that owns the block, and what the block records about the cluster. Their defaults are written here
once; the flags that set them are controller/config.py's table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterSettings:
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    sources: tuple[str, ...] = ("ingress",)  # names of controller/cluster/sources.py's SOURCES
    kubeconfig: str | None = None  # None: $KUBECONFIG, ~/.kube/config, else in-cluster
    context: str | None = None  # None: the kubeconfig's current one
    owner_daemonset: str | None = None  # NS/NAME: stopping removes the block only when it is going
    name: str | None = None  # recorded in the block; None: the kubeconfig context's name
    server: str | None = None  # recorded in the block; None: the kubeconfig's server
    node_name: str | None = None  # recorded in the block

    @property
    def scope(self) -> str:
        """What is watched, for messages: the namespaces, or all namespaces."""
        return "all namespaces" if self.all_namespaces else ",".join(self.namespaces)
