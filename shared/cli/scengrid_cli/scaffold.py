"""The files of a new model package (``scengrid new-model``): an installable distribution whose
entry point registers the model, the model itself (a vectorised class, or a per-scenario
function under ``@scenario_function``), a test that runs ``scengrid model check``, a README."""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")

PYPROJECT = '''\
[project]
name = "{name}"
version = "0.1.0"
description = "{name}: a scengrid model"
requires-python = ">=3.11"
# scengrid itself comes from the environment you install this into (a scengrid checkout's
# .venv, or the worker image); add what your model needs (QuantLib, your own library).
dependencies = ["scengrid", "numpy"]

# What makes it a scengrid model: the name a run gives (model.name) -> the function or class.
[project.entry-points."scengrid.models"]
{name} = "{module}.model:{target}"

[project.optional-dependencies]
test = ["pytest"]

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["{module}"]
'''

INIT = '''\
"""{name}: a scengrid model (see model.py)."""
'''

PER_SCENARIO_MODEL = '''\
"""{name}: a per-scenario model. scengrid calls ``price`` once per scenario, in every model
process of every worker, with that scenario's factor shocks; it returns the P&L (a float) or
a mapping holding ``pnl`` and any other columns.

Replace the body with your pricing (QuantLib, your own library): keep it a function of the
shock and the params only, so that results are reproducible (docs/models.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from scengrid.models import scenario_function

# factor name -> the scenario generator's default one-day vol of its shock
FACTORS = {{
    "rate.USD.5": 0.0007,  # absolute shift of the USD 5y zero rate
    "equity.SPX": 0.012,  # log return of the S&P 500
    "fx.EUR": 0.006,  # log return of USD per EUR
}}


@scenario_function(factors=FACTORS, params={{"notional": 1_000_000.0}})
def price(shock: Mapping[str, float], params: Mapping[str, float]) -> Mapping[str, float]:
    notional = params["notional"]
    rates = -4.5 * notional * shock["rate.USD.5"]  # a bond of duration 4.5
    equity = notional * math.expm1(shock["equity.SPX"])  # an index position
    fx = 0.5 * notional * math.expm1(shock["fx.EUR"])  # EUR cash
    return {{"pnl": rates + equity + fx, "pnl_rates": rates, "pnl_equity": equity, "pnl_fx": fx}}
'''

VECTORISED_MODEL = '''\
"""{name}: a vectorised model. scengrid prepares it once per model process (``__init__``) and
evaluates it on blocks of scenarios: ``shocks`` is an (n, F) array, one column per factor in
the order of ``FACTORS``; it returns one array of n values per result column, ``pnl`` first.

Replace the body with your pricing; keep it array code on the whole block, and a function of
the shocks and the params only, so that results are reproducible (docs/models.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scengrid.models import FactorSet, ScenarioModel

# factor name -> the scenario generator's default one-day vol of its shock
FACTORS = {{
    "rate.USD.5": 0.0007,  # absolute shift of the USD 5y zero rate
    "equity.SPX": 0.012,  # log return of the S&P 500
    "fx.EUR": 0.006,  # log return of USD per EUR
}}


class Model(ScenarioModel):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        unknown = sorted(set(params) - {{"notional"}})
        if unknown:
            raise ValueError(f"unknown params: {{', '.join(unknown)}} (known: notional)")
        self.notional = float(params.get("notional", 1_000_000.0))
        self._factors = FactorSet(tuple(FACTORS), np.array(list(FACTORS.values())))

    @property
    def factors(self) -> FactorSet:
        return self._factors

    def evaluate(self, shocks: np.ndarray) -> dict[str, np.ndarray]:
        rate, equity, fx = shocks[:, 0], shocks[:, 1], shocks[:, 2]
        pnl_rates = -4.5 * self.notional * rate  # a bond of duration 4.5
        pnl_equity = self.notional * np.expm1(equity)  # an index position
        pnl_fx = 0.5 * self.notional * np.expm1(fx)  # EUR cash
        return {{"pnl": pnl_rates + pnl_equity + pnl_fx, "pnl_rates": pnl_rates, "pnl_equity": pnl_equity, "pnl_fx": pnl_fx}}
'''

TEST = '''\
"""The model passes ``scengrid model check`` (registration, outputs, NaN, determinism, cost).
Run: pytest (after pip install -e .)."""

from __future__ import annotations

import subprocess
import sys


def test_the_model_passes_scengrid_model_check() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scengrid_cli.cli", "model", "check", "{name}"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
'''

README = '''\
# {name}

A scengrid model: `{module}/model.py` ({kind}), registered under the name `{name}` by the
entry point in `pyproject.toml`. The scengrid tutorial, docs/models.md in the scengrid
repository, explains each step.

```bash
# in the environment that has scengrid (a scengrid checkout: its .venv)
pip install -e .                  # or: uv pip install --python /path/to/scengrid/.venv/bin/python -e .
scengrid model check {name}       # outputs, NaN, determinism, cost per scenario, 1M scenarios on AWS
pytest                            # the same check, as a test
scengrid model eval --model {name} --generate 100000 --out results.parquet
scengrid demo --model {name} --scenarios 100000      # the whole pipeline, locally
scengrid image build .            # the worker images with this package installed (from the scengrid checkout's images)
scengrid demo --model {name} --containers --model-image TAG   # every job in those images (TAG: what image build printed)
MODEL=$PWD make -C /path/to/scengrid deploy   # on AWS: the job definitions run the images with this package
```

Params: `{{"notional": 1000000}}` (the default), e.g. `scengrid model check {name} --params '{{"notional": 5e6}}'`
or `model: {{name: {name}, params: {{notional: 5e6}}}}` in a run spec.
'''


IGNORE = """\
# Not copied into the images (scengrid image build uses this folder as the build context).
.git
.venv
**/__pycache__
*.egg-info
build
dist
"""


def files(name: str, per_scenario: bool) -> dict[str, str]:
    """Relative path -> content of the package's files."""
    module = name.replace("-", "_")
    values = {"name": name, "module": module, "target": "price" if per_scenario else "Model",
              "kind": "a per-scenario function under @scenario_function" if per_scenario else "a vectorised ScenarioModel"}
    model = PER_SCENARIO_MODEL if per_scenario else VECTORISED_MODEL
    return {
        "pyproject.toml": PYPROJECT.format(**values),
        f"{module}/__init__.py": INIT.format(**values),
        f"{module}/model.py": model.format(**values),
        "tests/test_model.py": TEST.format(**values),
        "README.md": README.format(**values),
        ".dockerignore": IGNORE,
    }
