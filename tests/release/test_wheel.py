"""The Python release artifacts: `python -m build` makes an sdist and a wheel that pass `twine check`,
hold the package and nothing else, and work when installed into a fresh venv (not the checkout).

The build is isolated, as in scripts/release.sh: it fetches its build backend (setuptools) from the package
index. The fresh venv gets the wheel without its dependencies; those come from the test run's own
site-packages through a .pth file (a path in a .pth file does not run that directory's own .pth files, so the
checkout's editable install is not visible there: the test checks where `controller` is imported from).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from controller import __version__
from testkit.controlplane import REPO_ROOT

DIST = "k8s_hosts_controller"
SOURCES = ("pyproject.toml", "README.md", "controller")  # what scripts/release.sh builds from
HOSTS = b"127.0.0.1\tlocalhost\n# the user's line\n10.0.0.9 keep.me\n"
BLOCK = b"#### BEGIN TYK-K8S-HOSTS ####\n10.1.0.1 app.example.test  # ns/app\n#### END TYK-K8S-HOSTS ####\n"


def run(argv: list, **kw) -> subprocess.CompletedProcess:
    # Without PYTHONPATH: a checkout on it would shadow the installed package.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=240, env=env, **kw)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import build  # noqa: F401
    except ImportError:
        pytest.fail("`build` is missing: install the test extras (pip install -e '.[test]')", pytrace=False)
    # From a copy of the files git would ship, as scripts/release.sh does: a stale *.egg-info in the
    # checkout would otherwise add its file list to the sdist.
    src = tmp_path_factory.mktemp("src")
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *SOURCES], cwd=REPO_ROOT
    )
    assert listed.returncode == 0, listed.stderr
    for name in filter(None, listed.stdout.split("\0")):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    proc = run([sys.executable, "-m", "build", "--outdir", out, src], cwd=out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def the(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, f"one {pattern} in {dist}: {found}"
    return found[0]


def package_files() -> set[str]:
    return {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "controller").rglob("*.py")}


def test_twine_check_passes(dist):
    proc = run([sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir())])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_wheel_holds_the_package_and_nothing_else(dist):
    wheel = the(dist, f"{DIST}-{__version__}-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    code = {n for n in names if not n.startswith(f"{DIST}-{__version__}.dist-info/")}
    assert code == package_files(), (
        "the wheel holds every module of controller/ (a new subpackage is listed?)"
    )
    top_level = zipfile.ZipFile(wheel).read(f"{DIST}-{__version__}.dist-info/top_level.txt").decode()
    assert top_level.split() == ["controller"]


def test_sdist_holds_the_package_and_nothing_of_the_tests_or_tools(dist):
    sdist = the(dist, f"{DIST}-{__version__}.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for folder in ("tests/", "bench/", "scripts/", "testkit/", "chart/", "docs/", "examples/"):
        assert not [n for n in names if n.startswith(folder)], f"{folder} is not in the sdist"
    assert package_files() <= names
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= names


@pytest.fixture(scope="module")
def fresh(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel installed (its dependencies through a .pth file); returns bin/."""
    root = tmp_path_factory.mktemp("fresh-venv")
    venv.EnvBuilder(with_pip=True).create(root)
    py = root / "bin" / "python"
    purelib = run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (Path(purelib) / "_test_deps.pth").write_text("".join(f"{p}\n" for p in deps))
    wheel = the(dist, f"{DIST}-*.whl")
    proc = run([py, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check", wheel])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    where = run([py, "-c", "import controller; print(controller.__file__)"], cwd=root).stdout.strip()
    assert where.startswith(purelib), f"controller must come from the installed wheel, not {where}"
    return root / "bin"


def test_installed_help_and_version(fresh, tmp_path):
    cli = fresh / "k8s-hosts-controller"
    proc = run([cli, "--help"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "--hosts-file" in proc.stdout
    proc = run([cli, "--version"], cwd=tmp_path)
    assert (proc.returncode, proc.stdout.strip()) == (0, f"k8s-hosts-controller {__version__}")


def test_installed_cleanup_removes_only_the_block(fresh, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_bytes(HOSTS + BLOCK)
    proc = run([fresh / "k8s-hosts-controller", "--cleanup", "--hosts-file", hosts], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert hosts.read_bytes() == HOSTS


def test_installed_wait(fresh, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_bytes(HOSTS + BLOCK)
    cli = fresh / "k8s-hosts-controller"
    args = ["--hosts-file", hosts, "--timeout", "5s"]
    proc = run([cli, "wait", "--host", "app.example.test", *args], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run([cli, "wait", "--host", "keep.me", "--timeout", "1s", "--hosts-file", hosts], cwd=tmp_path)
    assert proc.returncode != 0, "a name outside the block is not one the controller manages"
