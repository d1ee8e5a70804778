"""The API against its own OpenAPI spec, with generated requests (schemathesis), each signed
with the local stack's key as the CLI signs it (SigV4): no 5xx, and every response matches
the schema. The stack accepts and tracks runs but never starts them, so generated specs of any
size are safe to submit; it serves POST /predict with the small PD model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import botocore.session
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from scengrid_cli.client import SigV4RequestAuth
from services.tracker.openapi import SPEC_FILE

pytestmark = pytest.mark.e2e
MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, small_pd_model) -> Iterator[dict]:  # noqa: ANN001
    cwd = tmp_path_factory.mktemp("contract")
    cli = [sys.executable, "-m", "scengrid_cli.cli", "local"]
    env = {**os.environ, "SCENGRID_PD_MODEL_FILE": str(small_pd_model.path)}
    subprocess.run([*cli, "up", "--detach", "--no-runs"], cwd=cwd, env=env, check=True, capture_output=True, timeout=180)
    try:
        state = json.loads((cwd / ".scengrid" / "local.json").read_text())
        profile = botocore.session.Session()
        profile.set_config_variable("credentials_file", state["credentials_file"])
        profile.set_config_variable("profile", state["profile"])
        signed = requests.Session()
        signed.auth = SigV4RequestAuth(profile.get_credentials(), state["region"])
        yield {**state, "session": signed}
    finally:
        subprocess.run([*cli, "down"], cwd=cwd, check=True, capture_output=True, timeout=120)


schema = schemathesis.openapi.from_path(SPEC_FILE)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_spec(case, api: dict) -> None:  # noqa: ANN001
    case.call_and_validate(
        base_url=api["api_url"],
        session=api["session"],
        checks=[not_a_server_error, response_schema_conformance],
    )
