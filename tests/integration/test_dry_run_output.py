"""--dry-run's output as the real CLI prints it against the real API server: to an ASCII stdout (escaped,
never an encoding error) and to a reader that goes away (`| head`: a quiet exit with status 141, as a program
killed by SIGPIPE has in a pipeline; no traceback, no "the writer failed")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cluster.sources import HOSTNAMES

pytestmark = pytest.mark.integration

HANG_GUARD = 120  # seconds: only to turn a hang into a failure; never a speed assertion
ERRORS = ("Traceback", "the writer failed", "BrokenPipeError", "Exception ignored", "UnicodeEncodeError")


def dry_run_argv(namespace: str, hosts_file: Path, kubeconfig: Path) -> list[str]:
    return [
        sys.executable, "-m", "controller", "--namespaces", namespace, "--hosts-file", str(hosts_file),
        "--kubeconfig", str(kubeconfig), "--metrics-bind-address", "0", "--dry-run",
    ]  # fmt: skip


def assert_quiet(stderr: str) -> None:
    for error in ERRORS:
        assert error not in stderr, stderr
    assert " ERROR " not in stderr, stderr


def test_an_ascii_stdout_gets_escaped_names_not_an_encoding_error(
    ingresses, namespace, hosts_file, kubeconfig
):
    original = hosts_file.read_bytes()
    ingresses.create(namespace, "app", ["app.local"], ips=["10.20.0.1"])
    ingresses.net.patch_namespaced_ingress(
        "app", namespace, {"metadata": {"annotations": {HOSTNAMES: "bücher.test,ok.local"}}}
    )
    proc = subprocess.run(
        dry_run_argv(namespace, hosts_file, kubeconfig),
        capture_output=True,
        timeout=HANG_GUARD,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
    )
    stdout, stderr = proc.stdout.decode("ascii"), proc.stderr.decode(errors="replace")  # ASCII only
    assert proc.returncode == 0, stderr
    assert_quiet(stderr)
    assert f"+10.20.0.1 app.local  # {namespace}/app" in stdout
    assert f"+10.20.0.1 ok.local  # {namespace}/app" in stdout
    assert f"# refused b\\xfccher.test from {namespace}/app" in stdout
    assert hosts_file.read_bytes() == original


@pytest.fixture
def stale_block(hosts_file: Path) -> bytes:
    """A hosts file whose block lists 5,000 names the cluster does not have: a diff of about 250 kB, more
    than a pipe holds, so the dry run is still writing when the reader has gone."""
    lines = b"".join(
        b"10.9.%d.%d stale-%05d.local  # gone/app\n" % (i // 250, i % 250, i) for i in range(5000)
    )
    content = (
        hosts_file.read_bytes()
        + b"#### BEGIN TYK-K8S-HOSTS ####\n"
        + lines
        + b"#### END TYK-K8S-HOSTS ####\n"
    )
    hosts_file.write_bytes(content)
    return content


def test_a_reader_that_left_before_the_output_ends_the_run_quietly(
    namespace, hosts_file, kubeconfig, stale_block
):
    """The reading end is closed before the dry run prints: every write fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.Popen(
            dry_run_argv(namespace, hosts_file, kubeconfig),
            stdout=write_end,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
    finally:
        os.close(write_end)
    try:
        _, err = proc.communicate(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"--dry-run still running after {HANG_GUARD}s") from None
    stderr = err.decode(errors="replace")
    assert proc.returncode == 141, stderr
    assert_quiet(stderr)
    assert hosts_file.read_bytes() == stale_block


@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "PYTHONUNBUFFERED as in the image"])
def test_dry_run_into_head(namespace, hosts_file, kubeconfig, stale_block, tmp_path, unbuffered):
    """`--dry-run | head -c 20` in a shell with pipefail: head gets its 20 bytes, the dry run exits 141.
    Unbuffered, a text stream drops the rest of a partial write silently: the exit would be 0 and wrong."""
    argv = " ".join(f"'{a}'" for a in dry_run_argv(namespace, hosts_file, kubeconfig))
    script = (
        "set -o pipefail\n"
        f"{argv} 2>'{tmp_path}/stderr' | head -c 20 >'{tmp_path}/stdout'\n"
        f"echo \"${{PIPESTATUS[0]}}\" >'{tmp_path}/status'\n"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    subprocess.run(["bash", "-c", script], timeout=HANG_GUARD, check=False, env=env)
    stderr = (tmp_path / "stderr").read_text(errors="replace")
    assert (tmp_path / "status").read_text().strip() == "141", stderr
    assert (tmp_path / "stdout").read_bytes() == b"#### BEGIN TYK-K8S-H"
    assert_quiet(stderr)
    assert hosts_file.read_bytes() == stale_block


def test_a_file_without_final_newline_gets_a_diff_patch_applies(ingresses, namespace, tmp_path, kubeconfig):
    """Tyk-chart-like Ingresses (one with a wildcard the file cannot hold) and a hosts file whose last line
    has no newline: the real `patch` applies the dry run's diff, and gives what --once then writes."""
    user = b"127.0.0.1\tlocalhost\n::1 localhost\n10.1.1.1 gw.corp.example"  # no final newline
    hosts_file = tmp_path / "hosts"
    hosts_file.write_bytes(user)
    ingresses.create(namespace, "dashboard-ingress", ["chart-dash.local"], ips=["172.18.0.200"])
    ingresses.create(
        namespace, "gateway-ingress", ["chart-gw.local", "*.chart-gw.local"], ips=["172.18.0.200"]
    )
    proc = subprocess.run(
        dry_run_argv(namespace, hosts_file, kubeconfig), capture_output=True, timeout=HANG_GUARD, check=False
    )
    stdout, stderr = proc.stdout.decode(), proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, stderr
    assert_quiet(stderr)
    diff = stdout[stdout.index("--- ") :]
    assert "-10.1.1.1 gw.corp.example\n\\ No newline at end of file\n+10.1.1.1 gw.corp.example\n" in diff
    refused = [line for line in diff.splitlines() if line.startswith("# refused ")]
    assert len(refused) == 1 and refused[0].startswith(f"# refused *.chart-gw.local from {namespace}/"), diff
    patched = tmp_path / "patched"
    result = subprocess.run(
        ["patch", "--batch", "--output", str(patched), str(hosts_file)],
        input=diff.encode(),
        capture_output=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert hosts_file.read_bytes() == user  # the dry run wrote nothing
    once = dry_run_argv(namespace, hosts_file, kubeconfig)
    once[once.index("--dry-run")] = "--once"
    assert subprocess.run(once, capture_output=True, timeout=HANG_GUARD, check=False).returncode == 0
    assert patched.read_bytes() == hosts_file.read_bytes()
    assert hosts_file.read_bytes().endswith(b"#### END TYK-K8S-HOSTS ####\n")
