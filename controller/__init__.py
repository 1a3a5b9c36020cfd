"""k8s-hosts-controller: keeps Kubernetes Ingress hostnames in a marked block of a hosts file."""

__version__ = "0.1.0"
