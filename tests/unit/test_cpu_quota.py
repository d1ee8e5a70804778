"""cpu_count honours the cgroup CPU quota (a container's --cpus, a Fargate task's vCPUs), read
from fake /proc and cgroup files laid out as the kernel and the container engines lay them out."""

from __future__ import annotations

from pathlib import Path

import pytest

from scengrid import settings
from scengrid.cpu_quota import cgroup_cpu_limit

V2_MOUNT = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"
V1_MOUNTS = (
    "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
    "32 31 0:29 {root} /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 {root} /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
)


def layout(tmp_path: Path, cgroup: str, mountinfo: str, files: dict[str, str]) -> Path:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    (tmp_path / "proc/self/mountinfo").write_text(mountinfo)
    for name, text in files.items():
        path = tmp_path / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_cgroup_v2_inside_a_container(tmp_path: Path) -> None:
    """A private cgroup namespace: the container's cgroup is the mount's root."""
    root = layout(tmp_path, "0::/\n", V2_MOUNT, {"/sys/fs/cgroup/cpu.max": "150000 100000\n"})
    assert cgroup_cpu_limit(root) == 1.5


def test_cgroup_v2_without_a_limit(tmp_path: Path) -> None:
    root = layout(tmp_path, "0::/\n", V2_MOUNT, {"/sys/fs/cgroup/cpu.max": "max 100000\n"})
    assert cgroup_cpu_limit(root) is None


def test_cgroup_v2_a_parent_bounds_the_process_cgroup(tmp_path: Path) -> None:
    root = layout(
        tmp_path,
        "0::/pod/task\n",
        V2_MOUNT,
        {
            "/sys/fs/cgroup/cpu.max": "max 100000\n",
            "/sys/fs/cgroup/pod/cpu.max": "200000 100000\n",
            "/sys/fs/cgroup/pod/task/cpu.max": "400000 100000\n",
        },
    )
    assert cgroup_cpu_limit(root) == 2.0


def test_cgroup_v1_as_podman_and_runc_mount_it(tmp_path: Path) -> None:
    """Hybrid v1 (this project's machines): the mount's root is the container's own cgroup path,
    which /proc/self/cgroup names too."""
    container = "/libpod_parent/libpod-6b95a6e"
    root = layout(
        tmp_path,
        f"4:memory:{container}\n2:cpu,cpuacct:{container}\n0::{container}\n",
        V1_MOUNTS.format(root=container),
        {"/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "100000\n", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
    )
    assert cgroup_cpu_limit(root) == 1.0


def test_cgroup_v1_on_a_host_without_a_quota(tmp_path: Path) -> None:
    root = layout(
        tmp_path,
        "2:cpu,cpuacct:/\n",
        V1_MOUNTS.format(root="/"),
        {"/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
    )
    assert cgroup_cpu_limit(root) is None


def test_nothing_readable_means_no_limit(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path) is None


@pytest.mark.parametrize(("quota", "expected"), [(None, 8), (0.5, 1), (1.0, 1), (1.5, 2), (2.0, 2), (16.0, 8)])
def test_cpu_count_rounds_the_quota_up_and_stays_within_the_cpus(
    monkeypatch: pytest.MonkeyPatch, quota: float | None, expected: int
) -> None:
    monkeypatch.setattr(settings.os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr("scengrid.cpu_quota.cgroup_cpu_limit", lambda root=None: quota)
    assert settings.cpu_count() == expected
