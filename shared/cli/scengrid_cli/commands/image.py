"""``scengrid image build PATH``: the images that run a model package, FROM scengrid's own."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from scengrid.errors import InvalidInput, ScengridError

REPO = Path(__file__).resolve().parents[4]
BUILD_IMAGE = REPO / "scripts" / "build-image"
# The services that load the model: the sharder (its calibration), the worker, the collator
# (the report's factor names) run as Batch jobs, locally as containers too; the tracker's API
# checks a run's model and params (on AWS a Lambda of its image; locally in-process).
LOCAL_SERVICES = ("sharder", "worker", "collator")
ALL_SERVICES = (*LOCAL_SERVICES, "tracker")

EXAMPLES = """examples:
  scengrid image build ./acme-swaps                 # scengrid-{sharder,worker,collator}:model-acme-swaps-0.1.0
  scengrid image build ./acme-swaps --services worker
  scengrid demo --model acme-swaps --containers --model-image model-acme-swaps-0.1.0

Each image is FROM scengrid-SERVICE:local (make images builds them) with the package, and its
dependencies, installed into scengrid's environment; scripts/build-image --model PATH SERVICE
builds one (make images MODEL=PATH builds them all). The tag is model-<name>-<version>, from
the package's pyproject.toml: bump the version when the model changes. On AWS, MODEL=PATH
make deploy builds and pushes them and the job definitions run them (docs/models.md)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    image = subparsers.add_parser(
        "image", help="build the images that run a model package", description="Build container images with a model package installed."
    )
    actions = image.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser(
        "build",
        help="build scengrid's images with a model package installed (FROM scengrid-SERVICE:local)",
        description="Build the images of the services that load the model, each FROM scengrid's own image "
        "(scengrid-SERVICE:local) with the model package at PATH installed, tagged scengrid-SERVICE:model-<name>-<version>.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="PATH", type=Path, help="the model package's folder (its pyproject.toml)")
    p.add_argument(
        "--services", default=",".join(LOCAL_SERVICES),
        help=f"comma-separated, of {', '.join(ALL_SERVICES)} (default %(default)s: the Batch jobs; add tracker for AWS)",
    )
    p.add_argument("--json", action="store_true", help="end with one JSON line on stdout: the images built")
    p.set_defaults(func=run_build)


def _models_of(path: Path) -> list[str]:
    """The model names the package registers (its scengrid.models entry points)."""
    import tomllib

    try:
        project = tomllib.loads((path / "pyproject.toml").read_text()).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return []
    return sorted(project.get("entry-points", {}).get("scengrid.models", {}))


LOAD_CHECK = (
    "import sys\n"
    "from scengrid.models.registry import model_class\n"
    "for name in sys.argv[1:]:\n"
    "    model_class(name)\n"
)


def _check_loads(image: str, models: list[str]) -> None:
    """The package's models load in the image, as its user, without a network: a base image older
    than the package's scengrid, or a missing dependency, fails here (and the image is removed)
    rather than in a run."""
    if not models:
        return
    from scengrid_cli.local.container_jobs import container_engine

    result = subprocess.run([container_engine(), "run", "--rm", "--network", "none", "--pull=never", image,
                             "python", "-c", LOAD_CHECK, *models], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        subprocess.run([container_engine(), "rmi", image], capture_output=True)  # no run may take it
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ScengridError(
            f"{', '.join(models)} does not load in {image}: {last}. If scengrid's own images are older than this "
            "checkout, rebuild them (make images); if a dependency is missing, add it to the package's pyproject.toml"
        )


def run_build(args: argparse.Namespace) -> int:
    services = [s.strip() for s in args.services.split(",") if s.strip()]
    unknown = sorted(set(services) - set(ALL_SERVICES))
    if unknown or not services:
        raise InvalidInput("--services", f"{', '.join(unknown) or 'none given'}: choose among {', '.join(ALL_SERVICES)}")
    if not (args.path / "pyproject.toml").is_file():
        raise InvalidInput("PATH", f"{args.path} has no pyproject.toml: give the model package's folder (scengrid new-model writes one)")
    if not BUILD_IMAGE.is_file():
        raise ScengridError(f"{BUILD_IMAGE} is missing: scengrid image build runs from a checkout of the scengrid repository")
    built = []
    for service in services:
        print(f"building {service}'s image with {args.path}…", file=sys.stderr)
        result = subprocess.run([str(BUILD_IMAGE), "--model", str(args.path.resolve()), service], stdout=subprocess.PIPE, text=True)
        if result.returncode != 0:
            raise ScengridError(f"the {service} image did not build (its output is above); scripts/build-image exited {result.returncode}")
        built.append(json.loads(result.stdout.strip().splitlines()[-1]))
        _check_loads(built[-1]["image"], _models_of(args.path))
    tag = built[0]["image"].split(":", 1)[1]
    for image in built:
        print(f"built {image['image']} ({image['size_bytes'] / 1e6:,.0f} MB, {image['build_s']} s)", file=sys.stderr)
    for name in _models_of(args.path) or ["NAME"]:
        print(f"run it: scengrid demo --model {name} --containers --model-image {tag}", file=sys.stderr)
    if args.json:
        sys.stdout.write(json.dumps({"model_image_tag": tag, "images": built}) + "\n")
    return 0
