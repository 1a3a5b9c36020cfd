"""Benchmarks of k8s-hosts-controller (and any implementation with the same flags) against a real API server.

`python -m bench` runs all of them with modest defaults; `python -m bench latency|burst|startup|idle --help`.
"""
