"""The template and the state machine definition as data, for the template tests."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from scengrid_cli.local.cfn import load_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "infra" / "template.yaml"
ASL_PATH = ROOT / "infra" / "statemachine" / "run.asl.json"


@cache
def _template() -> str:
    return json.dumps(load_template(TEMPLATE_PATH))


def template() -> dict[str, Any]:
    """A fresh copy of the template (short-form tags as their long form)."""
    return json.loads(_template())


def resources() -> dict[str, Any]:
    return template()["Resources"]


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources().items() if r["Type"] == kind}


def asl() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text())
