"""The scripts' command-line behaviour that needs no cluster: usage text, usage errors, missing tools."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from controller import wait
from controller.durations import parse_duration

REPO = Path(__file__).resolve().parents[2]
HOSTS_SYNC = REPO / "scripts" / "hosts-sync.sh"
CREATE_CLUSTER = REPO / "scripts" / "create-cluster.sh"
BASH = "/bin/bash"


def run(script: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BASH, str(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("script", [HOSTS_SYNC, CREATE_CLUSTER], ids=lambda p: p.name)
def test_help(script: Path):
    result = run(script, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage:")


def test_hosts_sync_usage_errors():
    assert run(HOSTS_SYNC).returncode == 2
    bad = run(HOSTS_SYNC, "frobnicate")
    assert bad.returncode == 2 and "unknown verb 'frobnicate'" in bad.stderr
    mode = run(HOSTS_SYNC, "status", env={"HOSTS_SYNC_MODE": "kubelet"})
    assert mode.returncode == 2 and "HOSTS_SYNC_MODE must be host or cluster" in mode.stderr


def test_hosts_sync_start_needs_namespaces(tmp_path: Path):
    result = run(
        HOSTS_SYNC, "start", env={"HOSTS_SYNC_NAMESPACES": "", "HOSTS_SYNC_PID_FILE": str(tmp_path / "p")}
    )
    assert result.returncode == 2
    assert "HOSTS_SYNC_NAMESPACES" in result.stderr


def test_hosts_sync_missing_controller_is_explained(tmp_path: Path):
    result = run(
        HOSTS_SYNC,
        "start",
        env={
            "HOSTS_SYNC_NAMESPACES": "a",
            "HOSTS_SYNC_BIN": "no-such-k8s-hosts-controller",
            "HOSTS_SYNC_PID_FILE": str(tmp_path / "p"),
            "HOSTS_SYNC_LOG_FILE": str(tmp_path / "l"),
        },
    )
    assert result.returncode == 1
    assert "not found" in result.stderr and "pip install" in result.stderr
    # the package is not published: the way to install it is from this checkout, into a venv
    assert "pip install k8s-hosts-controller" not in result.stderr
    assert f"pip install {REPO}" in result.stderr and "HOSTS_SYNC_BIN=" in result.stderr


def test_hosts_sync_status_not_running(tmp_path: Path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    result = run(
        HOSTS_SYNC,
        "status",
        env={"HOSTS_SYNC_PID_FILE": str(tmp_path / "none.pid"), "HOSTS_SYNC_HOSTS_FILE": str(hosts)},
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "not running" in result.stdout


def test_create_cluster_names_every_missing_tool(tmp_path: Path):
    # A PATH with nothing but what the script needs before checking its tools.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname",):
        os.symlink(
            subprocess.run(
                ["bash", "-c", f"command -v {tool}"], capture_output=True, text=True, check=True
            ).stdout.strip(),
            bin_dir / tool,
        )
    result = run(CREATE_CLUSTER, env={"PATH": str(bin_dir)})
    assert result.returncode == 1
    for hint in (
        "docker: install Docker",
        "kind: go install sigs.k8s.io/kind@",
        "kubectl: see https://kubernetes.io/docs/tasks/tools/",
        "helm: see https://helm.sh/docs/intro/install/",
        "cloud-provider-kind: go install sigs.k8s.io/cloud-provider-kind@",
    ):
        assert hint in result.stderr, result.stderr


def test_create_cluster_without_loadbalancer_does_not_need_cloud_provider_kind(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(
        subprocess.run(
            ["bash", "-c", "command -v dirname"], capture_output=True, text=True, check=True
        ).stdout.strip(),
        bin_dir / "dirname",
    )
    result = run(CREATE_CLUSTER, env={"PATH": str(bin_dir), "NGINX_SVC_TYPE": "NodePort"})
    assert result.returncode == 1
    assert "cloud-provider-kind" not in result.stderr


def test_create_cluster_rejects_unknown_service_type():
    result = run(CREATE_CLUSTER, env={"NGINX_SVC_TYPE": "Ingress"})
    assert result.returncode == 1
    assert "NGINX_SVC_TYPE must be" in result.stderr


# ---- cluster mode plumbing, with recording stand-ins for helm and kubectl ------------------------------

FAKE = """#!/usr/bin/env bash
# Records its arguments (and the content of any -f values file) to $FAKE_LOG, answers like the real tool.
{{ printf '%s' "{name}"; printf ' %s' "$@"; echo; }} >> "$FAKE_LOG"
prev=""
for a in "$@"; do
  if [[ "$prev" == -f ]]; then echo "VALUES $(cat "$a")" >> "$FAKE_LOG"; fi
  prev=$a
done
while [[ "${{1:-}}" == --kubeconfig || "${{1:-}}" == --context || "${{1:-}}" == --kube-context ]]; do
  shift 2
done
if [[ "{name} $1" == "helm status" ]]; then exit "${{FAKE_HELM_STATUS:-0}}"; fi
# The block is the real controller's to read: its `status` runs from the checkout.
if [[ "{name} $1" == "k8s-hosts-controller status" ]]; then
  shift
  PYTHONPATH="$FAKE_REPO" exec python3 -m controller status "$@"
fi
if [[ "{name} $*" == "kubectl -n "*" get ds "* ]]; then echo "k8s-hosts-controller 1/1"; fi
if [[ "{name} $*" == "kubectl config current-context" ]]; then echo "kind-fake"; fi
if [[ "{name} $*" == "kubectl config view --minify "* ]]; then printf 'https://127.0.0.1:41234'; fi
exit 0
"""


@pytest.fixture
def fake_cluster_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name in ("helm", "kubectl"):
        path = bin_dir / name
        path.write_text(FAKE.format(name=name))
        path.chmod(0o755)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}\n")
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "FAKE_REPO": str(REPO),
        "HOSTS_SYNC_MODE": "cluster",
        "HOSTS_SYNC_HOSTS_FILE": str(hosts),
        "HOSTS_SYNC_KUBECONFIG": str(kubeconfig),
        "HOSTS_SYNC_BIN": "no-such-controller",
        "HOSTS_SYNC_TIMEOUT": "2s",
    }


def test_cluster_start_installs_the_chart_with_the_settings(fake_cluster_env: dict[str, str], tmp_path: Path):
    import json

    env = {
        **fake_cluster_env,
        "HOSTS_SYNC_NAMESPACES": "tyk, tyk-dp-1,tyk-dp-2",
        "HOSTS_SYNC_IMAGE": "registry.local:5000/k8s-hosts-controller:e2e",
        "HOSTS_SYNC_MARKER": "MY-BLOCK",
        "HOSTS_SYNC_NODE_HOSTS_PATH": "/mnt/hosts",
        "HOSTS_SYNC_HELM_ARGS": "--set verbose=true",
    }
    result = run(HOSTS_SYNC, "start", env=env)
    assert result.returncode == 0, result.stderr
    calls = Path(env["FAKE_LOG"]).read_text().splitlines()
    install = next(c for c in calls if c.startswith("helm ") and " upgrade --install " in c)
    assert f"--kubeconfig {env['HOSTS_SYNC_KUBECONFIG']}" in install
    assert f"upgrade --install k8s-hosts-controller {REPO / 'chart'}" in install
    assert "--namespace k8s-hosts-controller --create-namespace" in install
    assert "--wait --timeout 2s --set verbose=true" in install
    values = json.loads(next(c for c in calls if c.startswith("VALUES "))[len("VALUES ") :])
    assert values == {
        "allNamespaces": False,
        "namespaces": ["tyk", "tyk-dp-1", "tyk-dp-2"],
        "marker": "MY-BLOCK",
        "hostsFile": {"nodePath": "/mnt/hosts"},
        "image": {"repository": "registry.local:5000/k8s-hosts-controller", "tag": "e2e"},
        # which cluster writes the block, as this machine reaches it (the pod cannot know)
        "cluster": {"name": "kind-fake", "server": "https://127.0.0.1:41234"},
    }
    assert any(
        c.startswith("kubectl ") and "wait pod -l app.kubernetes.io/instance=k8s-hosts-controller" in c
        for c in calls
    )


def test_cluster_start_records_the_cluster_given(fake_cluster_env: dict[str, str]):
    import json

    env = {
        **fake_cluster_env,
        "HOSTS_SYNC_NAMESPACES": "tyk",
        "HOSTS_SYNC_CLUSTER_NAME": "dev",
        "HOSTS_SYNC_CLUSTER_SERVER": "https://10.0.0.9:6443",
    }
    assert run(HOSTS_SYNC, "start", env=env).returncode == 0
    line = next(c for c in Path(env["FAKE_LOG"]).read_text().splitlines() if c.startswith("VALUES "))
    assert json.loads(line[len("VALUES ") :])["cluster"] == {"name": "dev", "server": "https://10.0.0.9:6443"}


def test_cluster_start_all_namespaces(fake_cluster_env: dict[str, str]):
    import json

    env = {**fake_cluster_env, "HOSTS_SYNC_ALL_NAMESPACES": "true"}
    assert run(HOSTS_SYNC, "start", env=env).returncode == 0
    line = next(c for c in Path(env["FAKE_LOG"]).read_text().splitlines() if c.startswith("VALUES "))
    assert json.loads(line[len("VALUES ") :]) == {
        "allNamespaces": True,
        "marker": "TYK-K8S-HOSTS",
        "cluster": {"name": "kind-fake", "server": "https://127.0.0.1:41234"},
        # the checkout's chart defaults to the released image: the script passes the locally built one
        "image": {"repository": "k8s-hosts-controller"},
    }


# Values with what printf-built JSON or helm's --set would break: quotes, commas, '=', backslashes, spaces.
ODD_VALUES = {
    "HOSTS_SYNC_NAMESPACES": " tyk ,tyk-dp-1",
    "HOSTS_SYNC_MARKER": 'MY\\tBLOCK "x",y=z',
    "HOSTS_SYNC_NODE_HOSTS_PATH": "/mnt/a\"b,c=d\\e'f",
    "HOSTS_SYNC_CLUSTER_NAME": 'kind-"x",y=z\\w',
    "HOSTS_SYNC_CLUSTER_SERVER": 'https://127.0.0.1:6443/a"b',
    "HOSTS_SYNC_IMAGE": 'reg.local:5000/my "img",a=b\\c:v1',
}


def test_cluster_start_passes_odd_values_as_they_are(fake_cluster_env: dict[str, str]):
    import json

    env = {**fake_cluster_env, **ODD_VALUES}
    result = run(HOSTS_SYNC, "start", env=env)
    assert result.returncode == 0, result.stderr
    line = next(c for c in Path(env["FAKE_LOG"]).read_text().splitlines() if c.startswith("VALUES "))
    assert json.loads(line[len("VALUES ") :]) == {
        "allNamespaces": False,
        "namespaces": ["tyk", "tyk-dp-1"],
        "marker": 'MY\\tBLOCK "x",y=z',
        "hostsFile": {"nodePath": "/mnt/a\"b,c=d\\e'f"},
        "cluster": {"name": 'kind-"x",y=z\\w', "server": 'https://127.0.0.1:6443/a"b'},
        "image": {"repository": 'reg.local:5000/my "img",a=b\\c', "tag": "v1"},
    }


def test_cluster_status_and_stop_when_not_installed(fake_cluster_env: dict[str, str]):
    env = {**fake_cluster_env, "FAKE_HELM_STATUS": "1"}
    status = run(HOSTS_SYNC, "status", env=env)
    assert status.returncode == 3 and "not installed" in status.stdout
    stop = run(HOSTS_SYNC, "stop", env=env)
    assert stop.returncode == 0, stop.stderr
    assert "uninstall" not in Path(env["FAKE_LOG"]).read_text()


def test_cluster_stop_uninstalls_and_reports_a_block_that_stays(fake_cluster_env: dict[str, str]):
    assert run(HOSTS_SYNC, "status", env=fake_cluster_env).returncode == 0
    stop = run(HOSTS_SYNC, "stop", env=fake_cluster_env)
    assert stop.returncode == 0, stop.stderr
    assert "helm uninstall k8s-hosts-controller" in Path(fake_cluster_env["FAKE_LOG"]).read_text().replace(
        f"--kubeconfig {fake_cluster_env['HOSTS_SYNC_KUBECONFIG']} ", ""
    )
    # A block that does not go away (no pod to remove it): reported, with the way out, after the timeout.
    Path(fake_cluster_env["HOSTS_SYNC_HOSTS_FILE"]).write_text(
        "127.0.0.1 localhost\n#### BEGIN TYK-K8S-HOSTS ####\n"
        "10.0.0.1 a.test  # x/y\n#### END TYK-K8S-HOSTS ####\n"
    )
    stuck = run(HOSTS_SYNC, "stop", env=fake_cluster_env)
    assert stuck.returncode == 1
    assert "still in" in stuck.stderr and "cleanup" in stuck.stderr


# ---- one duration syntax and one notion of true, parsed once by hosts-sync.sh ------------------------------


def calls_of(env: dict[str, str]) -> list[str]:
    log = Path(env["FAKE_LOG"])
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def fake_controller_env(fake_cluster_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """fake_cluster_env plus a recording stand-in for k8s-hosts-controller (its `wait` succeeds at once)."""
    path = tmp_path / "fakebin" / "k8s-hosts-controller"
    path.write_text(FAKE.format(name="k8s-hosts-controller"))
    path.chmod(0o755)
    return {**fake_cluster_env, "HOSTS_SYNC_BIN": str(path)}


DURATIONS = [
    ("120", 120),
    ("120s", 120),
    ("2m", 120),
    ("1m30s", 90),
    ("1h", 3600),
    ("1h0m5s", 3605),
    ("09", 9),
    ("24h", 86400),
    ("1h30m", 5400),
    ("90s", 90),
    ("500ms", "500ms"),
    ("2m500ms", "120500ms"),
    ("3000ms", 3),
]


def tool_form(seconds: int | str) -> str:
    """What the script passes to helm, kubectl and `k8s-hosts-controller wait`: whole seconds, else ms."""
    return f"{seconds}s" if isinstance(seconds, int) else seconds


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_timeout_reaches_every_tool_in_one_form(fake_controller_env: dict[str, str], text: str, seconds: int):
    env = {**fake_controller_env, "HOSTS_SYNC_NAMESPACES": "tyk", "HOSTS_SYNC_TIMEOUT": text}
    result = run(HOSTS_SYNC, "start", "a.test", env=env)
    assert result.returncode == 0, result.stderr
    calls = calls_of(env)
    install = next(c for c in calls if " upgrade --install " in c)
    ready = next(c for c in calls if c.startswith("kubectl ") and " wait pod " in c)
    waited = next(c for c in calls if c.startswith("k8s-hosts-controller wait "))
    for call in (install, ready, waited):
        assert f" --timeout {tool_form(seconds)} " in call + " ", call
    assert "--host a.test" in waited


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_wait_timeout_option_takes_the_same_syntax(
    fake_controller_env: dict[str, str], text: str, seconds: int
):
    for args in (["--timeout", text], [f"--timeout={text}"]):
        result = run(HOSTS_SYNC, "wait", *args, "a.test", env=fake_controller_env)
        assert result.returncode == 0, result.stderr
        assert "wait --hosts-file" in calls_of(fake_controller_env)[-1]
        assert f" --timeout {tool_form(seconds)} " in calls_of(fake_controller_env)[-1] + " "
    # ... and means what the controller's own parser makes of the same text
    assert wait.parse_duration(tool_form(seconds)) == pytest.approx(parse_duration(text))


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "0s",
        "0ms",
        "2x",
        "1.5m",
        "m",
        "30s2m",
        "-5",
        "1 m",
        "ms",
        "5ms2s",
        "25h",
        "86401",
        "1441m",
        "9" * 30,
    ],
)
def test_bad_durations_are_refused_naming_the_setting(fake_controller_env: dict[str, str], text: str):
    result = run(HOSTS_SYNC, "status", env={**fake_controller_env, "HOSTS_SYNC_TIMEOUT": text})
    assert result.returncode == 2, result.stderr
    assert "HOSTS_SYNC_TIMEOUT must be" in result.stderr and f"(got '{text}')" in result.stderr
    option = run(HOSTS_SYNC, "wait", "--timeout", text, "a.test", env=fake_controller_env)
    assert option.returncode == 2 and "--timeout must be" in option.stderr
    assert not any(c.startswith("k8s-hosts-controller ") for c in calls_of(fake_controller_env))


def test_an_empty_timeout_option_is_refused_and_an_empty_variable_is_the_default(
    fake_controller_env: dict[str, str],
):
    option = run(HOSTS_SYNC, "wait", "--timeout=", "a.test", env=fake_controller_env)
    assert option.returncode == 2 and "--timeout must be a duration" in option.stderr
    default = run(HOSTS_SYNC, "wait", "a.test", env={**fake_controller_env, "HOSTS_SYNC_TIMEOUT": ""})
    assert default.returncode == 0, default.stderr
    assert " --timeout 120s " in calls_of(fake_controller_env)[-1] + " "


TRUE = ["true", "TRUE", "True", "1", "yes", "Yes", "on", "ON", " true "]
FALSE = ["false", "FALSE", "0", "no", "No", "off", ""]


@pytest.mark.parametrize(("text", "expected"), [(t, True) for t in TRUE] + [(f, False) for f in FALSE])
def test_all_namespaces_has_one_notion_of_true(fake_cluster_env: dict[str, str], text: str, expected: bool):
    import json

    env = {**fake_cluster_env, "HOSTS_SYNC_ALL_NAMESPACES": text, "HOSTS_SYNC_NAMESPACES": "tyk"}
    result = run(HOSTS_SYNC, "start", env=env)
    assert result.returncode == 0, result.stderr
    line = next(c for c in calls_of(env) if c.startswith("VALUES "))
    assert json.loads(line[len("VALUES ") :])["allNamespaces"] is expected


@pytest.mark.parametrize("text", TRUE)
def test_host_mode_accepts_the_same_true_without_namespaces(text: str, tmp_path: Path):
    # Past the namespace check: it fails later, on the missing controller command, not as a usage error.
    env = {"HOSTS_SYNC_ALL_NAMESPACES": text, "HOSTS_SYNC_BIN": "no-such-k8s-hosts-controller"}
    result = run(HOSTS_SYNC, "start", env={**env, "HOSTS_SYNC_HOSTS_FILE": str(tmp_path / "hosts")})
    assert result.returncode == 1, result.stderr
    assert "not found" in result.stderr and "HOSTS_SYNC_NAMESPACES" not in result.stderr


@pytest.mark.parametrize("text", ["maybe", "2", "y", "truee", "enabled"])
def test_other_truth_values_are_refused_naming_the_setting(text: str):
    result = run(HOSTS_SYNC, "status", env={"HOSTS_SYNC_ALL_NAMESPACES": text})
    assert result.returncode == 2
    assert f"HOSTS_SYNC_ALL_NAMESPACES must be true or false (got '{text}')" in result.stderr


@pytest.fixture
def fake_kind_env(fake_cluster_env: dict[str, str]) -> dict[str, str]:
    bin_dir = Path(fake_cluster_env["PATH"].split(":", 1)[0])
    kind = bin_dir / "kind"
    kind.write_text(
        '#!/usr/bin/env bash\n{ printf kind; printf " %s" "$@"; echo; } >> "$FAKE_LOG"\n'
        'if [[ "$*" == "get clusters" ]]; then echo hosts-sync; fi\n'
    )
    kind.chmod(0o755)
    return {**fake_cluster_env, "CLOUD_PROVIDER_KIND_PID_FILE": str(bin_dir / "no-cpk.pid")}


def test_delete_uninstalls_the_controller_and_waits_for_its_block_before_deleting(fake_kind_env):
    result = run(CREATE_CLUSTER, "delete", env=fake_kind_env)
    assert result.returncode == 0, result.stderr
    calls = Path(fake_kind_env["FAKE_LOG"]).read_text().splitlines()
    uninstall = next(i for i, c in enumerate(calls) if c.startswith("helm ") and " uninstall " in c)
    delete = calls.index("kind delete cluster --name hosts-sync")
    assert "--kube-context kind-hosts-sync" in calls[uninstall] and uninstall < delete

    # no release in the cluster: nothing to uninstall, the cluster is deleted
    Path(fake_kind_env["FAKE_LOG"]).unlink()
    result = run(CREATE_CLUSTER, "delete", env={**fake_kind_env, "FAKE_HELM_STATUS": "1"})
    assert result.returncode == 0, result.stderr
    calls_text = Path(fake_kind_env["FAKE_LOG"]).read_text()
    assert " uninstall " not in calls_text and "kind delete cluster --name hosts-sync" in calls_text


def test_delete_stops_when_the_block_stays(fake_kind_env):
    hosts = Path(fake_kind_env["HOSTS_SYNC_HOSTS_FILE"])
    hosts.write_text(
        "127.0.0.1 localhost\n"
        "#### BEGIN TYK-K8S-HOSTS ####\n10.0.0.1 a.local  # ns/a\n#### END TYK-K8S-HOSTS ####\n"
    )
    result = run(CREATE_CLUSTER, "delete", env={**fake_kind_env, "HOSTS_SYNC_TIMEOUT": "1s"})
    assert result.returncode == 1
    assert "still in the hosts file" in result.stderr and "cleanup" in result.stderr
    assert "kind delete cluster --name hosts-sync" not in Path(fake_kind_env["FAKE_LOG"]).read_text()


def test_create_cluster_delete_finds_a_cluster_listed_before_others(tmp_path: Path):
    """`kind get clusters` writes a line at a time; a reader that stops at the first match (grep -q) killed
    it with SIGPIPE, and under pipefail a listed cluster counted as absent: `delete` said "no kind cluster"
    and left it running (seen in the e2e with two clusters). The fake kind pauses between its lines."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "kind-calls"
    kind = bin_dir / "kind"
    kind.write_text(
        "#!/bin/bash\n"
        'case "$1 $2" in\n'
        '  "get clusters") echo wanted; sleep 0.5; echo other ;;\n'
        f'  "delete cluster") echo "$*" >> {calls} ;;\n'
        "esac\n"
    )
    kind.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CLUSTER_NAME": "wanted",
        "CLOUD_PROVIDER_KIND_PID_FILE": str(tmp_path / "cpk.pid"),
    }
    result = run(CREATE_CLUSTER, "delete", env=env)
    assert result.returncode == 0, result.stderr
    assert "no kind cluster" not in result.stderr
    assert calls.read_text() == "delete cluster --name wanted\n"
