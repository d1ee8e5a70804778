"""Shared fixtures. The local stack (embedded emulator + provisioned template) starts once
per session; tests use unique run ids, so they do not see each other's state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator["LocalStack"]:  # noqa: F821
    from scengrid.local.stack import LocalStack

    with LocalStack(work_dir=tmp_path_factory.mktemp("stack")) as stack:
        yield stack
