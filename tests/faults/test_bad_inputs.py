"""Bad input, end to end: refused objects in the cluster, bad command lines, damaged hosts files.

Whatever comes in, the block holds exactly the valid entries, every refusal is visible as an Event, and not
one byte of the user's content changes. Prints what it tried and what was lost (must be nothing).
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from tests.faults.helpers import FULL, say
from tests.helpers import eventually, managed, run_cli

pytestmark = pytest.mark.integration
ROUNDS = 10 if FULL else 2
USER = b"# mine\r\n127.0.0.1 localhost\n192.168.1.10 nas.home  # my NAS\n# caf\xe9 not utf-8\n"


def bad_objects(i: int) -> list[tuple[str, list[str], dict, dict]]:
    """(name, hosts, status ingress list, annotations) of objects that must be refused."""
    ip = [{"ip": f"10.90.{i}.1"}]
    return [
        (f"wild-{i}", [f"*.w{i}.bad.test"], ip, {}),
        (f"shadow-localhost-{i}", ["localhost"], ip, {}),
        (f"shadow-user-{i}", ["nas.home"], ip, {}),
        (f"outside-filter-{i}", [f"x{i}.example.org"], ip, {}),
        (f"unresolvable-{i}", [f"u{i}.bad.test"], [{"hostname": f"lb{i}.does-not-exist.invalid"}], {}),
        (f"bad-target-{i}", [f"t{i}.bad.test"], ip, {"k8s-hosts-controller.io/target": "not-an-ip"}),
        (f"bad-ignore-{i}", [f"g{i}.bad.test"], ip, {"k8s-hosts-controller.io/ignore": "maybe"}),
        (f"conflict-young-{i}", [f"ok{i}.good.test"], [{"ip": "10.99.99.99"}], {}),  # claims a good host
    ]


def test_bad_input_is_refused_and_nothing_is_lost(api, namespace, start_controller, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_bytes(USER)
    net, core = client.NetworkingV1Api(api), client.CoreV1Api(api)

    def create(name: str, host_list: list[str], status: list[dict], annotations: dict) -> None:
        net.create_namespaced_ingress(
            namespace,
            {
                "metadata": {"name": name, "annotations": annotations},
                "spec": {"rules": [{"host": h} for h in host_list]},
            },
        )
        net.patch_namespaced_ingress_status(
            name, namespace, {"status": {"loadBalancer": {"ingress": status}}}
        )

    expected, refused = set(), []
    for i in range(ROUNDS):  # the good ones first: they are the older claims
        create(f"ok-{i}", [f"ok{i}.good.test"], [{"ip": f"10.80.{i}.1"}], {})
        expected.add((f"ok{i}.good.test", f"10.80.{i}.1"))
    time.sleep(1.1)  # creationTimestamp has 1 s resolution: make the good claims strictly older
    for i in range(ROUNDS):
        for name, host_list, status, notes in bad_objects(i):
            create(name, host_list, status, notes)
            refused.append(name)

    ctl = start_controller(
        "--namespaces",
        namespace,
        "--hosts-file",
        str(hosts),
        "--domain-filter",
        "test",
        "--domain-filter",
        "home",
        "--domain-filter",
        "localhost",
        "--resolve-timeout",
        "1",
    )
    eventually(lambda: managed(hosts) == expected, what="exactly the valid entries")

    def objects_with_events() -> set[str]:
        events = core.list_namespaced_event(namespace).items
        return {e.involved_object.name for e in events if e.reason == "HostRefused"}

    eventually(
        lambda: objects_with_events() >= set(refused), timeout=60, what="an Event on every refused object"
    )
    assert hosts.read_bytes().startswith(USER)

    # Bad command lines: each exits 2 with one line, before touching the file.
    before = hosts.stat()
    bad_argv = [
        [],
        ["--namespaces", "a", "--all-namespaces"],
        ["--namespaces", " , "],
        ["--namespaces", "a", "--marker", "BAD#MARKER"],
        ["--namespaces", "a", "--marker", ""],
        ["--namespaces", "a", "--sync-delay", "-1"],
        ["--namespaces", "a", "--source", "gateway-udproute"],
        ["--namespaces", "a", "--metrics-bind-address", "nowhere"],
        ["--namespaces", "a", "--once", "--dry-run"],
        ["--namespaces", "a", "--kubeconfig", str(tmp_path / "missing.kubeconfig")],
        ["--namespaces", "a", "--hosts-file", str(tmp_path / "no-such-dir" / "hosts")],
        ["--namespaces", "a", "--hosts-file", str(tmp_path)],
    ]
    for argv in bad_argv:
        full = argv if "--hosts-file" in argv else [*argv, "--hosts-file", str(hosts)]
        done = run_cli(*full, env={"KUBECONFIG": str(tmp_path / "none")})
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, (
            argv,
            done.stderr,
        )
    after = hosts.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert ctl.proc.poll() is None

    # Damaged files: duplicate blocks, an unterminated block, our block inside another tool's lines.
    ctl.stop()
    damaged = [
        USER + b"#### BEGIN TYK-K8S-HOSTS ####\n1.1.1.1 stale.test  # x/y\n#### END TYK-K8S-HOSTS ####\n" * 3,
        USER + b"#### BEGIN TYK-K8S-HOSTS ####\n1.1.1.1 stale.test  # x/y\n",
        b"#### BEGIN TYK-K8S-HOSTS ####\n1.1.1.1 stale.test  # x/y\n" + USER,
    ]
    for content in damaged:
        hosts.write_bytes(content)
        again = start_controller(
            "--namespaces",
            namespace,
            "--hosts-file",
            str(hosts),
            "--domain-filter",
            "test,home,localhost",
            "--resolve-timeout",
            "1",
        )
        assert managed(hosts) == expected
        assert again.stop() == 0
        assert hosts.read_bytes() == USER, content

    tried = len(refused) + len(bad_argv) + len(damaged)
    say(
        f"bad inputs tried: {len(refused)} refused objects ({ROUNDS} rounds x {len(bad_objects(0))} kinds), "
        f"{len(bad_argv)} bad command lines, {len(damaged)} damaged files = {tried}; "
        "an Event on each refused object; entries lost 0; bytes outside the block changed 0"
    )
