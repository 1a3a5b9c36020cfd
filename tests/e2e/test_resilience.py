"""The scenario this project exists for: a Toxiproxy resilience test that reaches its services BY NAME
survives what kills a `kubectl port-forward`.

A Tyk-like stack (tests/e2e/manifests/resilience.yaml): a gateway whose every answer needs its store, the
store reached through Toxiproxy, the gateway and Toxiproxy's API published by Ingresses of class traefik
(MetalLB's address). A client sends requests continuously while the test, through Toxiproxy's API, (a) adds
latency, (b) resets connections, (c) disables the store's proxy, then restores each, and (d) replaces the
gateway's pods (`kubectl delete pod`); then it watches the client a little longer. The same steps run twice:
  - names: the controller in the cluster (the chart, installed by the drop-in
    examples/tyk/test-resilience-local.hosts-sync.sh in cluster mode) writes chart-gw.local and
    toxiproxy.local; the client and every Toxiproxy call resolve them through the managed file
    (conftest.by_name);
  - port-forward: `kubectl port-forward` to the same Services, as people do locally.
Asserted for names: only the requests of the injected faults fail, and the client path comes back by itself
after each phase. The port-forward figures are the comparison, printed and written with the names' into
docs/resilience/ and docs/resilience.md (tests/e2e/resilience_report.py)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testkit.ports import free_port
from tests.e2e import lb, resilience_report
from tests.e2e.conftest import (
    HOST_FILE_CONTENT,
    REPO_ROOT,
    Tools,
    by_name,
    env_or_fail,
    load_images,
    show_file,
    step,
)
from tests.e2e.resilience_report import Phase
from tests.e2e.test_kind import RELEASE, RELEASE_NS
from tests.helpers import block_lines as block
from tests.helpers import eventually

# Two runs of about a minute each, plus the stack and a chart install: minutes.
pytestmark = pytest.mark.timeout(1500)

NAMESPACE = "tyk-resilience"
GATEWAY_HOST, TOXIPROXY_HOST = "chart-gw.local", "toxiproxy.local"
DROP_IN = REPO_ROOT / "examples" / "tyk" / "test-resilience-local.hosts-sync.sh"
LATENCY_MS = 500
HOLD = 25  # requests sent while a fault is on
AFTER = 15  # requests after it is restored: the client path must answer again by itself


@pytest.fixture(scope="module")
def stack(cluster: Tools, lb_pool: lb.Pool) -> Iterator[None]:
    """The gateway, its store, Toxiproxy and the Ingresses of class traefik in NAMESPACE; removed after."""
    toxiproxy, standin = env_or_fail("E2E_TOXIPROXY_IMAGE"), env_or_fail("E2E_TYK_STANDIN_IMAGE")
    load_images(cluster, toxiproxy, standin)
    docs = lb.render(
        "resilience.yaml", NAMESPACE=NAMESPACE, TOXIPROXY_IMAGE=toxiproxy, TYK_STANDIN_IMAGE=standin,
        GATEWAY_HOST=GATEWAY_HOST, TOXIPROXY_HOST=TOXIPROXY_HOST,
    )  # fmt: skip
    try:
        step(f"the Tyk-like stack in {NAMESPACE}: gateway x2 -> Toxiproxy (proxy 'store') -> store")
        lb.apply(cluster, docs)
        for name in ("store", "toxiproxy", "gateway"):
            cluster.kubectl_(
                "-n", NAMESPACE, "rollout", "status", f"deployment/{name}", "--timeout=180s", timeout=200
            )
        print(cluster.kubectl_("-n", NAMESPACE, "get", "pods,svc,ingress", "-o", "wide").stdout)
        yield
    finally:
        step(f"remove {NAMESPACE} (not waiting: nothing later uses it)")
        cluster.kubectl_("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", timeout=300)


# ---- the two ways to the services --------------------------------------------------------------------------


class PortForward:
    """`kubectl port-forward svc/SERVICE` on a free local port; its output kept to show why it ended."""

    def __init__(self, cluster: Tools, service: str, port: int, work: Path) -> None:
        self.local = free_port()
        self.service = service
        self.stdout, self.stderr = work / f"pf-{service}.out", work / f"pf-{service}.err"
        argv = [
            cluster.kubectl, "--kubeconfig", str(cluster.kubeconfig), "-n", NAMESPACE, "port-forward",
            "--address", "127.0.0.1", f"svc/{service}", f"{self.local}:{port}",
        ]  # fmt: skip
        print(f"$ {shlex.join(argv[3:])}", flush=True)
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.died_at: float | None = None
        self.stopping = False
        threading.Thread(target=self._watch, daemon=True).start()
        eventually(lambda: "Forwarding from" in self.stdout.read_text(), 30, 0.1, f"port-forward {service}")

    def _watch(self) -> None:
        code = self.proc.wait()
        if not self.stopping:
            self.died_at = time.time()
            print(
                f"\n!! kubectl port-forward svc/{self.service} exited ({code}):\n{self.errors()}", flush=True
            )

    def errors(self) -> str:
        return self.stderr.read_text().strip()

    def stop(self) -> None:
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@dataclass
class Way:
    """One way to the gateway and to Toxiproxy's API: by name, or through port-forwards."""

    name: str
    gateway_url: str
    toxiproxy_url: str
    wrap: Callable[[list[str]], list[str]]
    forwards: list[PortForward] = field(default_factory=list)

    def toxiproxy(self, method: str, path: str, body: dict | None = None) -> str | None:
        """Toxiproxy's HTTP API; the answer, or None when it could not be reached (printed)."""
        url = f"{self.toxiproxy_url}{path}"
        argv = ["curl", "-fsS", "--noproxy", "*", "--max-time", "10", "-X", method, url]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
        print(f"$ curl -X {method} {url} {json.dumps(body) if body is not None else ''}", flush=True)
        proc = subprocess.run(self.wrap(argv), capture_output=True, text=True, timeout=30)
        print(f"  -> {(proc.stdout or proc.stderr).strip()[:300]}", flush=True)
        return proc.stdout if proc.returncode == 0 else None


class Client:
    """tests/e2e/resilience_client.py in the background: one JSON line per request."""

    def __init__(self, way: Way, work: Path) -> None:
        self.out = work / f"client-{way.name}.jsonl"
        argv = way.wrap([sys.executable, "-m", "tests.e2e.resilience_client", way.gateway_url])
        print(f"$ python -m tests.e2e.resilience_client {way.gateway_url}  (continuous)", flush=True)
        with self.out.open("w") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stdin=subprocess.DEVNULL, cwd=REPO_ROOT)

    def records(self) -> list[dict]:
        out = []
        for line in self.out.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:  # the line being written
                break
        return out

    def wait_more(self, count: int) -> None:
        """Until COUNT more requests are done (each takes at most the client's 5 s timeout)."""
        target = len(self.records()) + count
        assert self.proc.poll() is None, f"the client exited ({self.proc.returncode})"
        eventually(lambda: len(self.records()) >= target, 10 * count, 0.1, f"{count} more requests")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


# ---- the scenario ------------------------------------------------------------------------------------------


def gateway_pods(cluster: Tools) -> list[dict]:
    pods = cluster.kubectl_json("-n", NAMESPACE, "get", "pods", "-l", "app=gateway")["items"]
    return [p for p in pods if p["metadata"].get("deletionTimestamp") is None]


def ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def replace_gateway_pods(cluster: Tools, phase: Phase) -> None:
    """kubectl delete pod, one gateway pod after the other, each time until its replacement is Ready."""
    old = sorted(p["metadata"]["name"] for p in gateway_pods(cluster))
    gone: set[str] = set()
    for name in old:
        cluster.kubectl_("-n", NAMESPACE, "delete", "pod", name, "--wait=true", timeout=120)
        gone.add(name)

        def replaced() -> list[str] | None:
            pods = gateway_pods(cluster)
            names = [p["metadata"]["name"] for p in pods if ready(p) and p["metadata"]["name"] not in gone]
            return names if len(names) == 2 else None

        eventually(replaced, 120, 0.5, f"two Ready gateway pods after deleting {name}")
    cluster.kubectl_(
        "-n", NAMESPACE, "rollout", "status", "deployment/gateway", "--timeout=120s", timeout=150
    )
    new = sorted(p["metadata"]["name"] for p in gateway_pods(cluster))
    phase.notes.append(f"replaced {', '.join(old)} by {', '.join(new)}")
    print(f"gateway pods: {old} -> {new}", flush=True)


def run_scenario(cluster: Tools, way: Way, work: Path) -> dict:
    """The same steps for either way; returns the per-phase figures and every request."""
    step(f"[{way.name}] the scenario: gateway {way.gateway_url}, Toxiproxy's API {way.toxiproxy_url}")
    assert way.toxiproxy("POST", "/reset") is not None, "Toxiproxy's API does not answer"
    assert way.toxiproxy("GET", "/proxies/store") is not None
    client = Client(way, work)
    phases: list[Phase] = []

    def phase(
        name: str, what: str, injected: bool, inject: Callable[[Phase], None], restore, hold: int
    ) -> None:
        step(f"[{way.name}] {name}: {what}")
        current = Phase(name, what, injected, time.time())
        phases.append(current)
        inject(current)
        if hold:
            client.wait_more(hold)
        restore(current)
        current.restored = time.time()
        client.wait_more(AFTER)
        current.end = time.time()
        for forward in way.forwards:
            if forward.died_at is not None and forward.died_at >= current.start:
                current.notes.append(f"kubectl port-forward svc/{forward.service} exited")

    def api(method: str, path: str, body: dict | None = None) -> Callable[[Phase], None]:
        def call(current: Phase) -> None:
            if way.toxiproxy(method, path, body) is None:
                current.notes.append(f"Toxiproxy API {method} {path} failed")

        return call

    def nothing(_: Phase) -> None:
        pass

    try:
        eventually(lambda: any(r["status"] == 200 for r in client.records()), 60, 0.2, "a first answer")
        phase("baseline", "none", False, nothing, nothing, hold=0)
        toxics = "/proxies/store/toxics"
        latency = {"name": "latency", "type": "latency", "attributes": {"latency": LATENCY_MS, "jitter": 0}}
        phase(
            "latency", f"latency toxic {LATENCY_MS} ms on proxy store", False,
            api("POST", toxics, latency), api("DELETE", f"{toxics}/latency"), HOLD,
        )  # fmt: skip
        reset = {"name": "reset", "type": "reset_peer", "attributes": {"timeout": 0}}
        phase(
            "reset_peer", "reset_peer toxic (TCP RST) on proxy store", True,
            api("POST", toxics, reset), api("DELETE", f"{toxics}/reset"), HOLD,
        )  # fmt: skip
        phase(
            "store down", "proxy store disabled, then enabled", True,
            api("POST", "/proxies/store", {"enabled": False}),
            api("POST", "/proxies/store", {"enabled": True}), HOLD,
        )  # fmt: skip
        phase(
            "gateway pods replaced", "kubectl delete pod, each gateway pod in turn", False,
            lambda current: replace_gateway_pods(cluster, current), nothing, hold=0,
        )  # fmt: skip
        # Nothing more is done: whatever still fails now stays broken until someone restarts something.
        phase("afterwards", "none", False, nothing, nothing, hold=HOLD)
    finally:
        client.stop()
    requests = client.records()
    origin = phases[0].start
    for p in phases:
        p.start, p.restored, p.end = (round(x - origin, 3) for x in (p.start, p.restored, p.end))
    for r in requests:
        r["t"] = round(r["t"] - origin, 3)
    requests = [r for r in requests if phases[0].start <= r["t"] < phases[-1].end]
    died = [f.died_at for f in way.forwards if f.died_at is not None]
    return {
        "gateway_url": way.gateway_url,
        "toxiproxy_url": way.toxiproxy_url,
        "phases": [p.summary(requests) for p in phases],
        "requests": [{k: r[k] for k in ("t", "dt", "status", "pod", "error")} for r in requests],
        "forward_died_at": round(min(died) - origin, 3) if died else None,
        "forward_errors": {f.service: f.errors() for f in way.forwards},
    }


def print_figures(name: str, figures: dict) -> None:
    print(f"\n[{name}] per phase:", flush=True)
    for s in figures["phases"]:
        line = (
            f"  {s['name']:<22} sent {s['sent']:>3}  failed {s['failed']:>3} (during {s['failed_during']}, "
            f"after {s['failed_after']})  path alive after: {'yes' if s['survived'] else 'NO'}"
        )
        if s["median_ms_during"] is not None:
            line += f"  median {s['median_ms_during']} ms"
        print(line + ("  " + "; ".join(s["notes"]) if s["notes"] else ""))
        for error in s["errors"]:
            print(f"      failure: {error}")
    for service, errors in figures["forward_errors"].items():
        print(
            f"  kubectl port-forward svc/{service}: stderr:\n    "
            + (errors.replace("\n", "\n    ") or "(none)")
        )


# ---- the test ----------------------------------------------------------------------------------------------


def drop_in(cluster: Tools, host_file: Path, images: dict[str, str], functions: str) -> str:
    """Runs FUNCTIONS of examples/tyk/test-resilience-local.hosts-sync.sh as a user's script would (cluster
    mode: the chart's DaemonSet), with the managed file as /etc/hosts; returns its output."""
    env = {
        "PATH": os.pathsep.join(
            [
                str(Path(cluster.kubectl).parent),
                str(Path(cluster.helm).parent),
                str(Path(sys.executable).parent),
                os.environ["PATH"],
            ]
        ),
        "HOSTS_SYNC_MODE": "cluster",
        "HOSTS_SYNC_NAMESPACES": NAMESPACE,
        "HOSTS_SYNC_KUBECONFIG": str(cluster.kubeconfig),
        "HOSTS_SYNC_RELEASE": RELEASE,
        "HOSTS_SYNC_RELEASE_NAMESPACE": RELEASE_NS,
        "HOSTS_SYNC_IMAGE": images["controller"],
        "HOSTS_SYNC_WAIT_FOR": f"{GATEWAY_HOST} {TOXIPROXY_HOST}",
        "HOSTS_SYNC_TIMEOUT": "180s",
        "no_proxy": "*",
    }
    script = f'set -euo pipefail; source "{DROP_IN}"; {functions}'
    print(f"$ source examples/tyk/{DROP_IN.name}; {functions}  (HOSTS_SYNC_MODE=cluster)", flush=True)
    proc = subprocess.run(
        by_name(host_file, ["bash", "-c", script], env), capture_output=True, text=True, timeout=600
    )
    print(proc.stdout + proc.stderr, flush=True)
    assert proc.returncode == 0, f"{functions} exited {proc.returncode}"
    return proc.stdout


def test_resilience(
    cluster: Tools, stack: None, host_file: Path, images: dict[str, str], tmp_path: Path
) -> None:
    assert host_file.read_bytes() == HOST_FILE_CONTENT
    results: dict = {
        "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "where": "make e2e on kind, MetalLB + Traefik, "
        f"Toxiproxy {os.environ.get('E2E_TOXIPROXY_IMAGE', '?').rpartition(':')[2]}",
        "latency_ms": LATENCY_MS,
        "paths": {},
    }

    step("names: the drop-in's hostsSyncSetup + hostsSyncResilienceUrls (the chart in the cluster)")
    out = drop_in(cluster, host_file, images, "hostsSyncSetup && hostsSyncResilienceUrls")
    urls = dict(word.split("=", 1) for line in out.splitlines() if "_URL=" in line for word in line.split())
    assert urls == {"GATEWAY_URL": f"http://{GATEWAY_HOST}", "TOXIPROXY_URL": f"http://{TOXIPROXY_HOST}"}
    show_file(host_file, "written by the chart's DaemonSet")
    ip = lb.lb_address(cluster)
    assert f"{ip} {GATEWAY_HOST}  # {NAMESPACE}/gateway-ingress" in block(host_file)
    names = Way("names", urls["GATEWAY_URL"], urls["TOXIPROXY_URL"], lambda argv: by_name(host_file, argv))
    try:
        results["paths"]["names"] = run_scenario(cluster, names, tmp_path)
    finally:
        step("names: the drop-in's hostsSyncCleanup (helm uninstall; the block goes)")
        drop_in(cluster, host_file, images, "hostsSyncCleanup")
    assert host_file.read_bytes() == HOST_FILE_CONTENT, "the file is byte-identical to before"
    print_figures("names", results["paths"]["names"])

    step("port-forward: kubectl port-forward to the same Services, the same steps")
    forwards = [
        PortForward(cluster, "gateway", 8080, tmp_path),
        PortForward(cluster, "toxiproxy", 8474, tmp_path),
    ]
    gw, api = (f"http://127.0.0.1:{f.local}" for f in forwards)
    try:
        results["paths"]["port-forward"] = run_scenario(
            cluster, Way("port-forward", gw, api, list, forwards), tmp_path
        )
    finally:
        for forward in forwards:
            forward.stop()
    print_figures("port-forward", results["paths"]["port-forward"])

    step("the figures: docs/resilience/results.json, docs/resilience/resilience.png, docs/resilience.md")
    resilience_report.write(results)
    print(resilience_report.table(results))

    check_names_path(results["paths"]["names"])


def check_names_path(figures: dict) -> None:
    """By name, only the requests of the injected faults fail, and the client path comes back by itself."""
    for s in figures["phases"]:
        assert s["survived"], f"names: the client path did not come back after {s['name']}: {s}"
        if s["injected"]:
            assert s["failed_during"] > 0, (
                f"names: {s['name']} failed no request: is Toxiproxy in the path? {s}"
            )
        else:
            assert s["failed"] == 0, f"names: {s['failed']} requests failed in {s['name']}: {s['errors']}"
    latency = next(s for s in figures["phases"] if s["name"] == "latency")
    assert latency["median_ms_during"] >= LATENCY_MS, f"names: the latency toxic did not show: {latency}"
    pods = next(s for s in figures["phases"] if s["name"] == "gateway pods replaced")
    assert len(pods["pods"]) >= 3, f"names: the answers did not come from old and new pods: {pods['pods']}"
