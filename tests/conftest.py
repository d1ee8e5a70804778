"""Shared fixtures. The local stack (embedded emulator + provisioned template) starts once
per session; tests use unique run ids, so they do not see each other's state. The PD model
the stack publishes is the small variant, trained once per session in a few seconds."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def small_pd_model(tmp_path_factory: pytest.TempPathFactory) -> "TrainedModel":  # noqa: F821
    from scengrid_cli.training.train import train

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small variant stops before it converges, on purpose
        return train("small", tmp_path_factory.mktemp("pd-model"))


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory, small_pd_model) -> Iterator["LocalStack"]:  # noqa: ANN001, F821
    from scengrid_cli.local.stack import LocalStack

    with LocalStack(work_dir=tmp_path_factory.mktemp("stack"), pd_model=small_pd_model.path) as stack:
        yield stack
