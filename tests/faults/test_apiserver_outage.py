"""SIGKILL etcd and kube-apiserver for a while (quick: 5 s; FAULTS_FULL=1: 10 s), then create, change and
delete Ingresses through the restarted API server, starting at once (before the controller's watch is
back): the controller keeps running (it is not restarted) and converges, with zero stale or missing entries.

Uses its own control plane, since it kills it.
"""

from __future__ import annotations

import random
import time

import pytest

from testkit.api import Api, ip_for
from testkit.controlplane import ControlPlane
from testkit.process import ControllerProcess
from tests.faults.helpers import (
    FULL,
    USER,
    check_file,
    controller_argv,
    outside_of,
    say,
    wait_converged,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
OUTAGE = 10.0 if FULL else 5.0
ROUNDS = 3 if FULL else 1


def test_controller_converges_after_control_plane_crash(tmp_path, user_hosts):
    cp = ControlPlane(tmp_path / "cp").start()
    proc = None
    try:
        api = Api(cp)
        ns = "outage"
        api.namespace(ns)
        names = [f"o-{i}" for i in range(40)]
        for i, name in enumerate(names):
            api.create_ingress(ns, name, f"{name}.outage.faults.test")
            api.set_ip(ns, name, ip_for(i + 1))
        proc = ControllerProcess(
            controller_argv(cp.kubeconfig, user_hosts, ns), tmp_path / "controller.log"
        ).start()
        wait_converged(api, ns, user_hosts, timeout=60)
        rng = random.Random(5)
        counter = len(names)
        changes = {"created": 0, "changed": 0, "deleted": 0}
        for round_ in range(ROUNDS):
            cp.kill()
            say(f"round {round_ + 1}: SIGKILLed etcd and kube-apiserver for {OUTAGE:.0f} s")
            time.sleep(OUTAGE)
            assert proc.alive(), f"the controller exited during the outage:\n{proc.tail()}"
            cp.restart()
            api = Api(cp)  # new connections
            for name in rng.sample(names, 10):  # deletions its watch cannot see
                api.delete_ingress(ns, name)
                names.remove(name)
                changes["deleted"] += 1
            for name in rng.sample(names, 10):
                api.set_ip(ns, name, ip_for(rng.randrange(100, 60000)))
                changes["changed"] += 1
            for _ in range(10):
                counter += 1
                name = f"o-{counter}"
                api.create_ingress(ns, name, f"{name}.outage.faults.test")
                api.set_ip(ns, name, ip_for(counter))
                names.append(name)
                changes["created"] += 1
            t0 = time.monotonic()
            expected, content = wait_converged(api, ns, user_hosts, timeout=90)
            took = time.monotonic() - t0
            entries = expected.count(b"\n") - 2
            assert outside_of(content) == USER
            check_file(content)
            assert proc.alive(), "the controller was restarted or died"
            say(
                f"round {round_ + 1}: converged {took:.1f} s after the changes; "
                f"{entries} entries = cluster; stale 0, missing 0"
            )
        say(f"outages {ROUNDS} x {OUTAGE:.0f} s, changes through the restarted server {changes}; lost 0")
        assert proc.stop() == 0
        assert user_hosts.read_bytes() == USER
    finally:
        if proc is not None:
            proc.kill()
        cp.stop()
