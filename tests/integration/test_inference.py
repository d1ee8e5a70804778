"""The inference function against the emulator's S3, invoked as the workers invoke it
(boto3 ``lambda.invoke``, through the local stack's invoke endpoint, the real handler behind
it) and through the local API's ``POST /predict``: the model is fetched once, verified, kept,
reloaded only for a new version, and every way it can be broken is a clear error that the
next invocation recovers from once the object is fixed."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests

from scengrid import layout
from scengrid.aws import client, lambda_invoker
from scengrid_cli.training import ground_truth
from scengrid.inference.loader import ModelHolder, S3ModelSource, model_holder
from scengrid.inference.publish import publish_model
from scengrid_cli.training.train import _estimator, _to_onnx, sklearn_pd
from scengrid.settings import cpu_count, get_settings

ROWS = {"rows": [[0.0, 0.0, 0.0, 4, 5.0], [50.0, 300.0, -0.3, 6, 2.0]]}


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second valid model (a small forest), for a new version of the object."""
    features, target = ground_truth.training_sample(2_000, seed=5)
    path = tmp_path_factory.mktemp("other") / "forest.onnx"
    path.write_bytes(_to_onnx(_estimator({"kind": "forest", "trees": 2}, seed=5).fit(features, target), "test", 2_000, 5))
    return path


@pytest.fixture(scope="module")
def four_feature_model(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from sklearn.linear_model import LinearRegression
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    fitted = LinearRegression().fit(np.random.default_rng(0).random((50, 4)), np.arange(50.0))
    return convert_sklearn(fitted, initial_types=[("features", FloatTensorType([None, 4]))]).SerializeToString()


class ModelObject:
    """One test's model object in the stack's bucket, and the function pointed at it."""

    def __init__(self, bucket: str) -> None:
        self.bucket, self.key = bucket, f"models/test-{uuid.uuid4().hex[:12]}.onnx"
        self.uri = layout.s3_uri(bucket, self.key)

    def publish(self, path: Path) -> str:
        return publish_model(path, self.uri)

    def put(self, body: bytes, sha: str | None) -> None:
        client("s3").put_object(Bucket=self.bucket, Key=self.key, Body=body, Metadata={"sha256": sha} if sha else {})


@pytest.fixture
def model_object(local_stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModelObject]:  # noqa: ANN001
    """The function reads this object, checks its version on every call and caches in a
    fresh folder."""
    found = ModelObject(local_stack.settings.bucket)
    monkeypatch.setenv("SCENGRID_MODEL_URI", found.uri)
    monkeypatch.setenv("SCENGRID_MODEL_CHECK_S", "0")
    monkeypatch.setenv("SCENGRID_MODEL_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    yield found
    monkeypatch.undo()
    get_settings.cache_clear()


@contextmanager
def s3_calls() -> Iterator[Counter]:
    """Count the S3 requests this process makes (the function runs in it, behind the endpoint)."""
    seen: Counter = Counter()
    events = client("s3").meta.events
    handlers = {op: (lambda op=op, **_: seen.update([op])) for op in ("GetObject", "HeadObject")}
    for op, handler in handlers.items():
        events.register(f"before-call.s3.{op}", handler)
    try:
        yield seen
    finally:
        for op, handler in handlers.items():
            events.unregister(f"before-call.s3.{op}", handler)


def invoke(local_stack, payload: object) -> tuple[str | None, dict]:  # noqa: ANN001
    response = lambda_invoker().invoke(FunctionName=local_stack.settings.inference_function, Payload=json.dumps(payload).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def predicted(local_stack, payload: object = ROWS) -> dict:  # noqa: ANN001
    error, body = invoke(local_stack, payload)
    assert error is None, body
    return body


def failure(local_stack) -> dict:  # noqa: ANN001
    error, body = invoke(local_stack, ROWS)
    assert error == "Unhandled", body
    return body


@pytest.mark.parametrize("check_s", [0, 3600])
def test_the_model_is_loaded_once_across_100_warm_invocations(local_stack, model_object, small_pd_model, monkeypatch, check_s) -> None:  # noqa: ANN001
    monkeypatch.setenv("SCENGRID_MODEL_CHECK_S", str(check_s))
    get_settings.cache_clear()
    sha = model_object.publish(small_pd_model.path)
    with s3_calls() as calls:
        bodies = [predicted(local_stack) for _ in range(101)]  # the cold one, then 100 warm ones
    assert {b["model_version"] for b in bodies} == {sha}
    assert len({json.dumps(b["predictions"]) for b in bodies}) == 1
    assert calls["GetObject"] == 1 and model_holder().loads == 1
    assert calls["HeadObject"] == (100 if check_s == 0 else 0)  # a version check per call, or none within the interval


def test_a_changed_object_reloads_only_when_its_version_changes(local_stack, model_object, small_pd_model, other_model) -> None:  # noqa: ANN001
    first = model_object.publish(small_pd_model.path)
    with s3_calls() as calls:
        before = predicted(local_stack)
        assert model_object.publish(small_pd_model.path) == first  # rewritten: a new ETag, the same SHA-256
        assert predicted(local_stack) == before and calls["GetObject"] == 1
        second = model_object.publish(other_model)
        after = predicted(local_stack)
        assert after["model_version"] == second != first and after["predictions"] != before["predictions"]
        assert calls["GetObject"] == 2
        assert predicted(local_stack) == after and calls["GetObject"] == 2
    assert model_holder().loads == 2
    cached = sorted(p.name for p in Path(get_settings().model_cache_dir).iterdir())
    assert cached == [f"{second}.onnx"]  # the old version left /tmp


def test_between_checks_the_loaded_version_is_served(local_stack, small_pd_model, other_model, tmp_path: Path) -> None:  # noqa: ANN001
    target = layout.s3_uri(local_stack.settings.bucket, f"models/test-{uuid.uuid4().hex[:12]}.onnx")
    now = [0.0]
    holder = ModelHolder(S3ModelSource(target), tmp_path, check_s=30, threads=1, clock=lambda: now[0])
    first = publish_model(small_pd_model.path, target)
    with s3_calls() as calls:
        assert holder.get().version == first
        second = publish_model(other_model, target)
        now[0] = 29.0
        assert holder.get().version == first and calls["HeadObject"] == 0
        now[0] = 30.0
        assert holder.get().version == second and calls == Counter({"GetObject": 2, "HeadObject": 1})


def test_a_checksum_mismatch_is_a_clear_error_then_recovers(local_stack, model_object, small_pd_model) -> None:  # noqa: ANN001
    body = small_pd_model.path.read_bytes()
    wrong = hashlib.sha256(b"another model").hexdigest()
    model_object.put(body, wrong)
    for _ in range(2):  # not remembered as broken: each invocation tries again
        error = failure(local_stack)
        assert error["errorType"] == "ModelChecksumMismatch"
        assert wrong in error["errorMessage"] and small_pd_model.sha256 in error["errorMessage"]
        assert model_object.uri in error["errorMessage"] and "re-upload" in error["errorMessage"]
    assert not list(Path(get_settings().model_cache_dir).glob("*"))  # nothing unverified stays
    model_object.put(body, small_pd_model.sha256)
    assert predicted(local_stack)["model_version"] == small_pd_model.sha256


@pytest.mark.parametrize("problem", ["missing", "no checksum", "corrupt", "four features"])
def test_a_broken_model_is_a_clear_error_and_the_next_invocation_recovers(
    local_stack, model_object, small_pd_model, four_feature_model, problem  # noqa: ANN001
) -> None:
    corrupt = b"\x08\x07not an onnx model" * 100
    error_type, says = {
        "missing": ("ModelNotFound", "no such object; train one with `make model`"),
        "no checksum": ("ModelInvalid", "no SHA-256 in its metadata"),
        "corrupt": ("ModelInvalid", "not a loadable ONNX model"),
        "four features": ("ModelInvalid", "takes 4 features per row; the contract has 5"),
    }[problem]
    if problem == "no checksum":
        model_object.put(small_pd_model.path.read_bytes(), None)
    elif problem == "corrupt":
        model_object.put(corrupt, hashlib.sha256(corrupt).hexdigest())
    elif problem == "four features":
        model_object.put(four_feature_model, hashlib.sha256(four_feature_model).hexdigest())
    for _ in range(2):
        error = failure(local_stack)
        assert (error["errorType"], model_object.uri) == (error_type, error["errorMessage"].split(": ")[0].removeprefix("PD model "))
        assert says in error["errorMessage"]
    model_object.publish(small_pd_model.path)
    assert predicted(local_stack)["model_version"] == small_pd_model.sha256


def test_a_bad_replacement_fails_until_fixed_and_the_good_version_needs_no_download(local_stack, model_object, small_pd_model) -> None:  # noqa: ANN001
    good = model_object.publish(small_pd_model.path)
    served = predicted(local_stack)
    model_object.put(b"garbage", hashlib.sha256(b"garbage").hexdigest())
    assert failure(local_stack)["errorType"] == "ModelInvalid"
    with s3_calls() as calls:
        model_object.publish(small_pd_model.path)
        assert predicted(local_stack) == served and served["model_version"] == good
    assert calls["GetObject"] == 0  # the loaded model is that version: kept, not fetched again


def test_the_session_runs_on_the_vcpus_sequentially(local_stack, model_object, small_pd_model) -> None:  # noqa: ANN001
    import onnxruntime as ort

    model_object.publish(small_pd_model.path)
    predicted(local_stack)
    options = model_holder().get().session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (cpu_count(), 1)
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


@pytest.fixture
def api(local_stack) -> Iterator[str]:  # noqa: ANN001
    from scengrid_cli.local.http_api import LocalApi
    from scengrid_cli.local.stack import REGION

    served = LocalApi([local_stack.api_user], REGION).start()
    try:
        yield served.url
    finally:
        served.stop()


@pytest.fixture
def signer(local_stack):  # noqa: ANN001, ANN201
    from scengrid_cli.client import SigV4RequestAuth
    from scengrid_cli.local.stack import REGION

    return SigV4RequestAuth(local_stack.api_user.credentials(), REGION)


def test_post_predict_through_the_api(api: str, signer, model_object, small_pd_model) -> None:  # noqa: ANN001
    post = lambda body, **kw: requests.post(f"{api}/predict", data=body, timeout=30, **kw)  # noqa: E731
    key = {"auth": signer, "headers": {"Content-Type": "application/json"}}
    unsigned = post(json.dumps(ROWS), headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 403 and unsigned.json() == {"message": "Missing Authentication Token"}
    missing = post(json.dumps(ROWS), **key)
    assert missing.status_code == 503 and "no such object" in missing.json()["error"]
    model_object.publish(small_pd_model.path)
    ok = post(json.dumps(ROWS), **key)
    assert ok.status_code == 200 and ok.json()["shape"] == [2] and ok.json()["model_version"] == small_pd_model.sha256
    bad = post(json.dumps({"rows": [[0, 0, 0, 4]]}), **key)
    assert bad.status_code == 400 and bad.json()["field"] == "rows[0]"
    assert post("x" * 10, auth=signer, headers={"Content-Type": "text/plain"}).status_code == 415
    too_big = post(b"[" + b"0," * (3 * 1024 * 1024) + b"0]", **key)
    assert too_big.status_code == 413 and too_big.json()["field"] == "body"


def test_the_same_predictions_by_invoke_and_by_the_api(local_stack, api: str, signer, model_object, small_pd_model) -> None:  # noqa: ANN001
    model_object.publish(small_pd_model.path)
    by_api = requests.post(f"{api}/predict", json=ROWS, auth=signer, timeout=30).json()
    assert by_api == predicted(local_stack)
    expected = sklearn_pd(small_pd_model.estimator, np.array(ROWS["rows"], dtype=np.float32))
    assert np.abs(np.array(by_api["predictions"]) - expected).max() < 1e-5
