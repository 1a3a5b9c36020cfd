"""The test kit: what the tests (tests/) and the benchmarks (bench/) share.

- controlplane: a real etcd + kube-apiserver (RBAC, tokens, kubeconfigs, log tails)
- api: fast raw writes of Ingresses and their status
- process: the controller as a real process, its /readyz and /metrics
- filewatch: every version of a file as it appears (inotify)
- ports: free loopback ports
- tools: command-line tools found through this environment or PATH
- fixtures: the pytest fixtures built on the above (control_plane, api, namespace, start_controller)

Imported as a top-level package from the repository root (pytest puts it on sys.path through tests/'s
rootdir; `python -m bench` runs from it); it is not part of the installed distribution.
"""
