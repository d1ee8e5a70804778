"""Reading a service's Dockerfile without a container engine: its stages, what they copy from
the build context, and the packages its image installs, replayed from the locked export the
Dockerfile runs (for the image's platform and Python) into a folder."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Every image, Batch and Lambda alike (a Lambda image is this base plus awslambdaric).
BASE = "python:3.11-slim-bookworm"
# The platform tag and Python of each base image: Debian bookworm has glibc 2.36.
PLATFORM = {
    BASE: ("x86_64-manylinux_2_36", "3.11"),
}


# ---------------------------------------------------------------- a small Dockerfile reader
@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def args(self) -> dict[str, str | None]:
        """Each ``ARG`` the stage declares, with its default (None: no default)."""
        declared: dict[str, str | None] = {}
        for arg in self.all("ARG"):
            name, eq, default = arg.partition("=")
            declared[name] = default.strip('"') if eq else None
        return declared

    def env(self) -> dict[str, str]:
        """What the stage's ``ENV`` instructions set (the ``KEY=value`` form)."""
        return dict(pair.split("=", 1) for env in self.all("ENV") for pair in env.split())


def read_stages(path: Path) -> list[Stage]:
    text = re.sub(r"\\\n", " ", path.read_text())  # join continuation lines
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None))
        else:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def external_base(stages: list[Stage], stage: Stage) -> str:
    """The image a stage starts from, following ``FROM <earlier stage>`` to the first one."""
    names = {s.name: s for s in stages if s.name}
    while stage.base in names:
        stage = names[stage.base]
    return stage.base


def lineage(stages: list[Stage], stage: Stage) -> list[Stage]:
    """The stage and the earlier stages it is built ``FROM``, the first one first."""
    names = {s.name: s for s in stages if s.name}
    chain = [stage]
    while chain[0].base in names:
        chain.insert(0, names[chain[0].base])
    return chain


def copies(stage: Stage) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY/ADD of the build context (not ``--from``)."""
    out = []
    for args in stage.all("COPY") + stage.all("ADD"):
        if args.startswith("--from"):
            continue
        parts = args.split()
        out.append((parts[:-1], parts[-1]))
    return out


def build_stage_of(stages: list[Stage]) -> Stage:
    """The stage whose installed packages the final image copies."""
    final = stages[-1]
    names = {s.name: s for s in stages if s.name}
    sources = [a.split()[0].split("=", 1)[1] for a in final.all("COPY") if a.startswith("--from=")]
    return next(names[s] for s in sources if s in names and names[s].all("RUN"))


# ---------------------------------------------------------------- tools
def tool(name: str) -> str:
    for candidate in (Path(sys.executable).parent / name, ROOT / ".tools" / "bin" / name):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed (make venv)"
    return found


_sites: dict[tuple, Path] = {}


def feeding_stages(stages: list[Stage], stage: Stage) -> list[Stage]:
    """The stages whose files ``stage`` copies (``COPY --from``), each after those feeding it,
    then ``stage`` itself: what must run, in this order, to build it."""
    names = {s.name: s for s in stages if s.name}
    order: list[Stage] = []
    for args in stage.all("COPY"):
        source = args.split()[0].split("=", 1)[1] if args.startswith("--from=") else None
        if source in names and names[source] not in order:
            order += [s for s in feeding_stages(stages, names[source]) if s not in order]
    return [*order, stage]


def installed_site(stages: list[Stage], build: Stage, platform: tuple[str, str], tmp: Path) -> Path:
    """The packages of an image: the RUN of the build stage, and of the stages it copies from
    (the locked requirements' export), replayed command by command in one copy of their build
    context (their WORKDIR is the same), with every install and resolution aimed at the image's
    platform and Python, and into one target folder (what the image's venv ends up holding).
    uv is this machine's (the image's comes from its ``uv`` stage, pinned to the same version)."""
    replayed = feeding_stages(stages, build)
    assert len({tuple(s.all("WORKDIR")) for s in replayed}) == 1, "the replayed stages share one WORKDIR"
    key = (platform, *(tuple(s.all("RUN")) for s in replayed))
    if key in _sites:
        return _sites[key]
    context, site = tmp / f"context-{len(_sites)}", tmp / f"site-{len(_sites)}"
    for stage in replayed:
        _replay(stage, platform, context, site)
    _sites[key] = site
    return site


def _replay(stage: Stage, platform: tuple[str, str], context: Path, site: Path) -> None:
    for sources, destination in copies(stage):
        for source in sources:
            src, dst = ROOT / source, context / destination
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                dst.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, dst / src.name)
    uv = tool("uv")
    for command in " && ".join(stage.all("RUN")).split(" && "):
        words = command.split()
        if words[:2] == ["uv", "venv"]:
            continue  # the image's virtualenv: here the packages go to a target folder
        # the venv's packages and those installed into a folder that the image copies into it
        command = re.sub(r"--python /opt/venv/bin/python|--target /opt/\S+", f"--target {site}", command)
        if words[:3] in (["uv", "pip", "install"], ["uv", "pip", "compile"]):
            command += f" --python-platform {platform[0]} --python-version {platform[1]}"
        if words[0] == "uv":
            command = f"{uv} {command[3:]}"
        subprocess.run(command, shell=True, cwd=context, check=True, capture_output=True)  # noqa: S602 - the Dockerfile's own RUN


def installed_distributions(site: Path) -> dict[str, int]:
    """Each distribution installed in ``site`` (normalised name) and the bytes of its files."""
    sizes: dict[str, int] = {}
    for info in sorted(site.glob("*.dist-info")):
        name = re.sub(r"[-_.]+", "-", info.name.removesuffix(".dist-info").rsplit("-", 1)[0]).lower()
        total = 0
        for line in (info / "RECORD").read_text().splitlines():
            path = site / line.split(",", 1)[0]
            if path.is_file():
                total += path.stat().st_size
        sizes[name] = total
    return sizes


def image_contents(dockerfile: Path, tmp: Path) -> dict[str, int]:
    """The distributions the image built from ``dockerfile`` installs, with their sizes."""
    stages = read_stages(dockerfile)
    build = build_stage_of(stages)
    return installed_distributions(installed_site(stages, build, PLATFORM[external_base(stages, build)], tmp))


def main() -> int:
    """Print each service image's distributions and installed size as JSON."""
    import json
    import tempfile

    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dockerfile in sorted((ROOT / "services").glob("*/Dockerfile")):
            sizes = image_contents(dockerfile, Path(tmp))
            report[dockerfile.parent.name] = {
                "distributions": len(sizes),
                "installed_mb": round(sum(sizes.values()) / 1e6, 1),
                "names": sorted(sizes),
            }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
