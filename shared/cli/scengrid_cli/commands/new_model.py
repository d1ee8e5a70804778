"""``scengrid new-model NAME``: scaffold an installable model package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scengrid.errors import InvalidInput
from scengrid_cli.scaffold import NAME_PATTERN, files

EXAMPLES = """examples:
  scengrid new-model acme-swaps --per-scenario      # a function priced once per scenario
  scengrid new-model acme-book --dir ~/models/acme-book   # a vectorised class
  cd acme-swaps && pip install -e . && scengrid model check acme-swaps

It writes pyproject.toml (the entry point, group scengrid.models, that registers NAME), the
model (NAME with - as _ is the module), tests/test_model.py (runs scengrid model check) and a
README with the next steps. Install it into the environment that has scengrid. See
docs/models.md."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "new-model",
        help="scaffold an installable model package (entry point, model, test, README)",
        description="Write a new model package: an installable distribution whose entry point registers the model under NAME.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="the model's name and the distribution's: lowercase letters, digits and -")
    p.add_argument("--dir", type=Path, help="where to write the package (default ./NAME); must not exist or be empty")
    p.add_argument("--per-scenario", action="store_true", help="a per-scenario function under @scenario_function (default: a vectorised class)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not NAME_PATTERN.fullmatch(args.name):
        raise InvalidInput("NAME", f"{args.name!r}: use lowercase letters, digits and single dashes, starting with a letter (e.g. acme-swaps)")
    target: Path = args.dir or Path(args.name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput("--dir", f"{target} exists and is not an empty folder: choose another --dir")
    try:
        for relative, text in files(args.name, args.per_scenario).items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    except OSError as exc:
        raise InvalidInput("--dir", f"cannot write {target}: {exc.strerror or exc}") from None
    kind = "per-scenario function" if args.per_scenario else "vectorised model"
    print(f"wrote the {kind} {args.name!r} to {target}/ (model: {target}/{args.name.replace('-', '_')}/model.py)", file=sys.stderr)
    print(f"next: {install_command(target)} && scengrid model check {args.name}   (docs/models.md)", file=sys.stderr)
    return 0


def install_command(target: Path) -> str:
    """How to install the package into the environment this scengrid runs in: its pip, else
    uv (a scengrid checkout's venv is uv's, without pip)."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("pip") is not None:
        return f"{sys.executable} -m pip install -e {target}"
    uv = Path(__file__).resolve().parents[4] / ".tools" / "bin" / "uv"
    uv_command = str(uv) if uv.is_file() else shutil.which("uv") or "uv"
    return f"{uv_command} pip install --python {sys.executable} -e {target}"
