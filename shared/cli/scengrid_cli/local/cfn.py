"""Reading the CloudFormation template (YAML with short-form intrinsic tags) as plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


# libyaml's parser reads the template in 0.05 s instead of 0.25-0.35 s (it is read twice for
# every stack start); PyYAML without libyaml falls back to its pure-Python loader.
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SAFE_LOADER):  # type: ignore[misc, valid-type]
    """A safe loader that turns ``!Ref X`` into ``{"Ref": "X"}`` and ``!Sub s`` into ``{"Fn::Sub": s}``."""


class _PurePythonCfnLoader(yaml.SafeLoader):
    """The same in pure Python (what a machine without libyaml uses)."""


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct)
_PurePythonCfnLoader.add_multi_constructor("!", _construct)


def load_template(path: Path, pure_python: bool = False) -> dict[str, Any]:
    loader = _PurePythonCfnLoader if pure_python else _CfnLoader
    return yaml.load(path.read_text(), Loader=loader)  # noqa: S506 - a SafeLoader subclass
