"""Write (``--write``) or check the event JSON schemas in infra/schemas/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scengrid.events import event_schemas, schema_text

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "infra" / "schemas"


def stale_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of the schema files that are missing or differ from the models."""
    return [
        name
        for name, schema in event_schemas().items()
        if not (directory / f"{name}.json").is_file() or (directory / f"{name}.json").read_text() != schema_text(schema)
    ]


def write_schemas(directory: Path = SCHEMA_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in event_schemas().items():
        (directory / f"{name}.json").write_text(schema_text(schema))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the files instead of checking them")
    args = parser.parse_args()
    if args.write:
        write_schemas()
        return 0
    stale = stale_schemas()
    if stale:
        print(f"stale event schemas: {', '.join(stale)}; run `make schemas`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
