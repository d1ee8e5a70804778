"""Write (``--write``) or check infra/openapi.json, the API's OpenAPI spec."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from services.tracker.api import app

SPEC_FILE = Path(__file__).resolve().parents[2] / "infra" / "openapi.json"


def openapi_text() -> str:
    spec = json.loads(app.get_openapi_json_schema(title="scengrid", version="1.0.0", description="scengrid runs API"))
    spec["components"]["securitySchemes"] = {"apiKey": {"type": "apiKey", "name": "x-api-key", "in": "header"}}
    spec["security"] = [{"apiKey": []}]
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the file instead of checking it")
    if parser.parse_args().write:
        SPEC_FILE.write_text(openapi_text())
        return 0
    if not SPEC_FILE.is_file() or SPEC_FILE.read_text() != openapi_text():
        print(f"{SPEC_FILE} is stale; run `make schemas`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
