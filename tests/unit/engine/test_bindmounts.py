"""A hosts file bind-mounted into another mount namespace (a kind node, any container) is found, and auto
write mode then writes it in place, so the mount keeps seeing the file: on mountinfo text as the kernel writes
it, and on a real bind mount in a child mount namespace."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controller.engine.bindmounts import (
    BindMount,
    Mount,
    find_bind_mounts,
    locate,
    mounts_of,
    parse_mountinfo,
)
from controller.engine.block import splice
from controller.engine.entries import Entry
from controller.engine.hostsfile import HostsFile

# A host whose / is ext4 on 8:1, as /proc/self/mountinfo shows it.
HOST = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=8k,nr_inodes=1,mode=755
41 22 0:35 / /tmp rw,nosuid,nodev shared:20 - tmpfs tmpfs rw
"""

# The kind node built from kind-config.yaml: its own overlay root, the host's /etc/hosts at
# /mnt/host-etc-hosts/hosts, and docker's own hosts file at /etc/hosts.
KIND_NODE = """\
1234 1100 0:120 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/l/A:/l/B,upperdir=/u,workdir=/w
1240 1234 0:122 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1250 1234 8:1 /etc/hosts /mnt/host-etc-hosts/hosts rw,relatime - ext4 /dev/sda1 rw,errors=remount-ro
1251 1234 8:1 /var/lib/docker/containers/abc/hosts /etc/hosts rw,relatime - ext4 /dev/sda1 rw
1252 1234 8:1 /var/lib/docker/containers/abc/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/sda1 rw
"""

# The same node after something on the host replaced /etc/hosts by a rename: its mount is on the old inode.
STRANDED_NODE = KIND_NODE.replace("8:1 /etc/hosts /mnt", "8:1 /etc/hosts//deleted /mnt")

# A host whose / is a btrfs subvolume: paths inside the file system start with the subvolume.
BTRFS_HOST = "30 1 0:31 /@ / rw,relatime shared:1 - btrfs /dev/sda2 rw,subvol=/@\n"
BTRFS_CONTAINER = (
    "900 800 0:70 / / rw - overlay overlay rw\n"
    "901 900 0:31 /@/etc/hosts /mnt/host-etc-hosts/hosts rw,relatime - btrfs /dev/sda2 rw,subvol=/@\n"
)


def test_mountinfo_lines_are_parsed_with_escaped_paths():
    text = "50 22 8:1 /home/a\\040b/hosts /mnt/my\\040hosts rw - ext4 /dev/sda1 rw\nnot a mountinfo line\n"
    assert parse_mountinfo(text) == [Mount("8:1", "/home/a b/hosts", "/mnt/my hosts")]


def test_optional_fields_do_not_shift_the_columns():
    text = "60 22 8:1 /etc/hosts /x rw shared:3 master:2 propagate_from:1 - ext4 /dev/sda1 rw\n"
    assert parse_mountinfo(text) == [Mount("8:1", "/etc/hosts", "/x")]


def test_the_file_is_located_on_the_deepest_mount_that_holds_it():
    host = parse_mountinfo(HOST)
    assert locate("/etc/hosts", host) == ("8:1", "/etc/hosts")
    assert locate("/tmp/t/hosts", host) == ("0:35", "/t/hosts")
    assert locate("/tmpx/hosts", host) == ("8:1", "/tmpx/hosts")  # /tmp is not a prefix of /tmpx
    assert locate("/etc/hosts", parse_mountinfo(BTRFS_HOST)) == ("0:31", "/@/etc/hosts")


def test_a_file_that_is_itself_a_mount_point_is_located_at_its_source():
    node = parse_mountinfo(KIND_NODE)
    assert locate("/mnt/host-etc-hosts/hosts", node) == ("8:1", "/etc/hosts")
    assert locate("/etc/hosts", node) == ("8:1", "/var/lib/docker/containers/abc/hosts")


def test_the_kind_nodes_mount_of_the_host_file_is_found_and_nothing_else():
    device, inside = locate("/etc/hosts", parse_mountinfo(HOST))
    assert mounts_of(device, inside, parse_mountinfo(KIND_NODE)) == [
        Mount("8:1", "/etc/hosts", "/mnt/host-etc-hosts/hosts")
    ]
    assert mounts_of(device, inside, parse_mountinfo(HOST)) == []  # the host's own view: not a bind mount
    assert mounts_of(device, inside, parse_mountinfo(STRANDED_NODE)) == []  # already on another inode
    # Another file on the same device, and the same path on another device, are not it.
    assert mounts_of(device, "/etc/hostname", parse_mountinfo(KIND_NODE)) == []
    assert mounts_of("8:2", inside, parse_mountinfo(KIND_NODE)) == []
    device, inside = locate("/etc/hosts", parse_mountinfo(BTRFS_HOST))
    assert [m.mount_point for m in mounts_of(device, inside, parse_mountinfo(BTRFS_CONTAINER))] == [
        "/mnt/host-etc-hosts/hosts"
    ]


def _proc(tmp_path: Path, namespaces: dict[str, tuple[str, str]], own: str = HOST) -> Path:
    """A /proc tree of real files: self/mountinfo, and per pid its ns/mnt link and mountinfo."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(own)
    for pid, (namespace, mountinfo) in namespaces.items():
        (proc / pid / "ns").mkdir(parents=True)
        (proc / pid / "ns" / "mnt").symlink_to(f"mnt:[{namespace}]")
        if mountinfo is not None:
            (proc / pid / "mountinfo").write_text(mountinfo)
    return proc


def test_every_namespace_is_read_once_and_unreadable_processes_are_skipped(tmp_path):
    proc = _proc(
        tmp_path,
        {
            "1": ("4026531840", HOST),
            "812": ("4026532200", KIND_NODE),
            "813": ("4026532200", KIND_NODE),  # same namespace as 812: reported once
            "900": ("4026532300", None),  # its mountinfo cannot be read: skipped
            "901": ("4026532400", STRANDED_NODE),
        },
    )
    (proc / "900" / "mountinfo").mkdir()  # reading it fails (a directory), like a process not ours
    (proc / "not-a-pid").mkdir()
    assert find_bind_mounts("/etc/hosts", str(proc)) == [BindMount(812, "/mnt/host-etc-hosts/hosts")]
    assert find_bind_mounts("/etc/hostname", str(proc)) == []


def test_no_proc_means_no_bind_mounts_seen(tmp_path):
    assert find_bind_mounts("/etc/hosts", str(tmp_path / "nothing")) == []


def test_auto_mode_writes_in_place_when_a_bind_mount_is_seen(tmp_path, caplog):
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 localhost\n")
    inode = path.stat().st_ino
    hosts = HostsFile(path)
    hosts.find_bind_mounts = lambda target: [BindMount(4242, "/mnt/host-etc-hosts/hosts")]
    with caplog.at_level(logging.INFO, logger="controller.engine.hostsfile"):
        result = hosts.sync([Entry("app.local", "10.0.0.1", "ns/app")])
    assert result.changed and result.mode == "inplace"
    assert path.stat().st_ino == inode
    said = [r.getMessage() for r in caplog.records if "bind-mounted" in r.getMessage()]
    assert len(said) == 1 and "4242" in said[0] and "/mnt/host-etc-hosts/hosts" in said[0]
    hosts.sync([Entry("app.local", "10.0.0.2", "ns/app")])  # said once, not at every write
    assert len([r for r in caplog.records if "bind-mounted" in r.getMessage()]) == 1


def test_auto_mode_still_renames_a_file_nobody_mounts(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 localhost\n")
    hosts = HostsFile(path)
    hosts.find_bind_mounts = lambda target: []
    assert hosts.sync([Entry("app.local", "10.0.0.1", "ns/app")]).mode == "rename"


# -- a real bind mount in a child mount namespace (Linux, root, util-linux unshare)

needs_mount_namespaces = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("unshare"),
    reason="needs root and unshare(1) to make a mount namespace",
)


class _MountedElsewhere:
    """A child mount namespace that keeps ``source`` bind-mounted at ``target`` while it lives."""

    def __init__(self, source: Path, target: Path) -> None:
        target.touch()
        script = f'mount --bind "{source}" "{target}" && echo ready && exec sleep 300'
        self.process = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"
        self.target = target

    def read(self) -> bytes:
        """The file as the child namespace sees it at ``target``."""
        return Path(f"/proc/{self.process.pid}/root{self.target}").read_bytes()

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def mounted(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n# the user's line\n")
    child = _MountedElsewhere(hosts, tmp_path / "node-view")
    yield hosts, child
    child.close()


@needs_mount_namespaces
def test_a_real_bind_mount_in_another_namespace_is_found(mounted):
    hosts, child = mounted
    found = find_bind_mounts(hosts)
    assert [m.mount_point for m in found] == [str(child.target)]
    assert find_bind_mounts(hosts.parent / "node-view") == []  # our view of the target is a plain file


@needs_mount_namespaces
def test_auto_mode_keeps_the_other_namespace_on_the_same_file(mounted):
    hosts, child = mounted
    inode = hosts.stat().st_ino
    HostsFile(hosts).sync([Entry("app.local", "10.0.0.1", "ns/app")])
    assert hosts.stat().st_ino == inode
    assert child.read() == hosts.read_bytes()
    assert b"10.0.0.1 app.local" in child.read()


@needs_mount_namespaces
def test_cleanup_by_the_cli_writes_in_place_and_says_why(mounted):
    hosts, child = mounted
    hosts.write_bytes(splice(hosts.read_bytes(), [Entry("app.local", "10.0.0.1", "ns/app")], "TYK-K8S-HOSTS"))
    inode = hosts.stat().st_ino
    done = subprocess.run(
        [sys.executable, "-m", "controller", "--cleanup", "--hosts-file", str(hosts)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert hosts.stat().st_ino == inode
    assert child.read() == hosts.read_bytes() == b"127.0.0.1 localhost\n# the user's line\n"
    said = [line for line in done.stderr.splitlines() if "bind-mounted" in line]
    assert len(said) == 1 and str(child.target) in said[0], done.stderr
