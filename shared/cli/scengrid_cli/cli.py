"""The ``scengrid`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from scengrid_cli.commands import demo, image, local, model, new_model, plan, runs
from scengrid.errors import ScengridError

COMMANDS = (demo, local, runs, plan, model, new_model, image)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scengrid",
        description="Run a vectorised financial model over many scenarios: serverless on AWS, or locally.",
        epilog="Run 'scengrid COMMAND --help' for a command's options and examples.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ScengridError as exc:
        print(f"scengrid: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValidationError as exc:  # an option that made an invalid RunSpec
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or exc.title
        print(f"scengrid: invalid {where}: {first['msg']}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scengrid: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
