"""The CPU quota of this process's cgroup: what a container limited by ``--cpus`` (and a Fargate
task, by its vCPUs) may use. ``os.sched_getaffinity`` does not see it: it still lists every
CPU of the host.

The quota is read the way the kernel applies it: the process's own cgroup (``/proc/self/cgroup``)
inside the mount of the ``cpu`` controller (``/proc/self/mountinfo``; in a container the mount's
root is the container's own cgroup), and each parent up to the mount, since a parent's quota
bounds its children. cgroup v2 keeps ``cpu.max`` (``"max 100000"`` or ``"<quota> <period>"``),
v1 ``cpu.cfs_quota_us`` (``-1``: none) and ``cpu.cfs_period_us``."""

from __future__ import annotations

from pathlib import Path, PurePosixPath


def cgroup_cpu_limit(root: Path = Path("/")) -> float | None:
    """The smallest quota / period over the process's cgroup and its parents, in CPUs, or None
    when nothing limits it (or nothing can be read). ``root`` is where ``/proc`` and the cgroup
    mounts are found (tests give a folder of fake files)."""
    limits = [limit for directory in _cpu_cgroup_dirs(root) if (limit := _limit_in(directory)) is not None]
    return min(limits) if limits else None


def _cpu_cgroup_dirs(root: Path) -> list[Path]:
    """The process's cpu cgroup folder and its parents within the mount, own folder first."""
    try:
        memberships = (root / "proc/self/cgroup").read_text().splitlines()
        mounts = (root / "proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    own: dict[str, str] = {}  # "cpu" (v1) or "" (v2) -> the process's cgroup path
    for line in memberships:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            own[controller] = path
    found: list[Path] = []
    for line in mounts:
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        mount_root, mount_point = fields[3], fields[4]
        fstype, *_, options = line.split(" - ", 1)[1].split()
        if fstype == "cgroup2" and "" in own:
            path = own[""]
        elif fstype == "cgroup" and "cpu" in options.split(",") and "cpu" in own:
            path = own["cpu"]
        else:
            continue
        found += _dirs_within(root, mount_root, mount_point, path)
    return found


def _dirs_within(root: Path, mount_root: str, mount_point: str, path: str) -> list[Path]:
    relative = PurePosixPath(path).relative_to(mount_root) if PurePosixPath(path).is_relative_to(mount_root) else None
    if relative is None:  # the process's cgroup is not under this mount (another namespace's view)
        return []
    base = root / mount_point.lstrip("/")
    parts = [p for p in relative.parts if p not in ("", "/")]
    return [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _limit_in(directory: Path) -> float | None:
    try:
        if (directory / "cpu.max").is_file():
            quota, period = (directory / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if (directory / "cpu.cfs_quota_us").is_file():
            quota_us = int((directory / "cpu.cfs_quota_us").read_text())
            period_us = int((directory / "cpu.cfs_period_us").read_text())
            return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
    return None
