"""The test-only model plug-in (``scengrid_test_models``), made importable with its entry
points without installing it into the venv: ``plugin_path`` writes the distribution's
metadata beside a copy of the package, in a folder to put on ``PYTHONPATH`` (and to mount into
job containers, which read it as any other user)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "scengrid_test_models"


def plugin_path(into: Path) -> Path:
    """A folder holding the package and its ``.dist-info`` (name, version, entry points)."""
    project = tomllib.loads((HERE / "pyproject.toml").read_text())["project"]
    into.mkdir(parents=True, exist_ok=True)
    shutil.copytree(HERE / PACKAGE, into / PACKAGE, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    info = into / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for path in [into, *into.rglob("*")]:  # readable by a container's unprivileged user
        path.chmod(0o755 if path.is_dir() else 0o644)
    return into
