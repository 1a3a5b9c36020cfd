"""The test kit: what the tests (tests/) and the benchmarks (bench/) share.

- controlplane: a real etcd + kube-apiserver (RBAC, tokens, kubeconfigs, log tails)
- api: fast raw writes of Ingresses and their status
- process: the controller as a real process, its /readyz and /metrics
- filewatch: every version of a file as it appears (inotify)
- ports: free loopback ports
- tools: command-line tools found through this environment or PATH
- fixtures: the pytest fixtures built on the above (control_plane, api, namespace, start_controller)

A top-level package found from the repository root, with no sys.path edits: tests/ is a package, so pytest
puts its parent (the root) on sys.path, and `python -m bench` runs from the root. It is not part of the
installed distribution (pyproject.toml packages only controller/).
"""
