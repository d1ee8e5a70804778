"""The template is valid for AWS: cfn-lint finds no error or warning that is not suppressed,
with its reason, in the template itself."""

from pathlib import Path

from cfnlint.api import lint_all

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"


def test_cfn_lint_is_clean() -> None:
    matches = [m for m in lint_all(TEMPLATE.read_text()) if m.rule.id[0] in "EW"]
    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []
