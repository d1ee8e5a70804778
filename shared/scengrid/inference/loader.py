"""The PD model in a process: loaded at the first use, verified against its SHA-256, cached in
/tmp, kept for the life of the process, and reloaded only when its version changes.

Where it comes from is ``SCENGRID_MODEL_URI``:
- ``s3://bucket/key`` (pattern 1): the object carries its SHA-256 in its metadata. The first
  load is one GET (streamed to /tmp while hashing); after that, at most every
  ``SCENGRID_MODEL_CHECK_S`` seconds (0: every call) one HEAD compares the metadata's SHA-256
  with the loaded one, and only a different one downloads and loads the new model.
- a path, or ``file://`` (pattern 2, the model baked into the image): the SHA-256 sits beside
  it in ``<file>.sha256`` and the file is verified once.

A failed load (no object, a checksum that does not match, bytes that are not an ONNX model,
a model that does not take the contract's features) raises ModelUnavailable and changes
nothing: the next call tries again, so fixing the object is enough to recover.

The onnxruntime session runs its operators one after another (sequential, one inter-op
thread) and spreads each operator over the process's vCPUs (intra-op threads), without
spinning between calls: a Lambda's CPU is a share of a host, paid for while it spins."""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scengrid.aws import client
from scengrid.errors import ModelChecksumMismatch, ModelInvalid, ModelNotFound
from scengrid.inference.contract import FEATURES, PREDICTION_DECIMALS, ColumnsRequest, GridRequest, RowsRequest
from scengrid.inference.publish import SHA256_METADATA, SHA256_PATTERN, checksum_file, parse_s3_uri, sha256_file
from scengrid.settings import Settings, cpu_count, get_settings

_CHUNK = 1 << 20
_MISSING = ("404", "NoSuchKey", "NotFound")


@dataclass(frozen=True)
class LoadedModel:
    uri: str
    version: str  # SHA-256 of the model file
    session: Any  # onnxruntime.InferenceSession
    input_name: str
    output_name: str
    fetch_s: float  # download and checksum
    session_s: float  # session creation

    def predict(self, features: np.ndarray) -> np.ndarray:
        """PD of each (n, 5) row, float32, shape (n,)."""
        rows = np.ascontiguousarray(features, dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: rows})[0].reshape(-1)


def _declared_sha(uri: str, metadata: dict[str, str]) -> str:
    sha = (metadata or {}).get(SHA256_METADATA, "").strip().lower()
    if not SHA256_PATTERN.match(sha):
        raise ModelInvalid(uri, f"the object has no SHA-256 in its metadata (x-amz-meta-{SHA256_METADATA}); "
                                "upload it with `python -m scengrid.inference.publish`")
    return sha


class ModelSource(ABC):
    uri: str

    @abstractmethod
    def latest_version(self) -> str:
        """The SHA-256 of the model the source holds now: a cheap check (a HEAD, a small file)."""

    @abstractmethod
    def fetch(self, cache_dir: Path, expected: str | None) -> tuple[Path, str]:
        """A local file of the current model, verified, and its SHA-256."""


class S3ModelSource(ModelSource):
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.bucket, self.key = parse_s3_uri(uri)

    def _request(self, operation: str) -> dict[str, Any]:
        """``head_object`` or ``get_object`` of the model; ModelNotFound when there is none."""
        s3 = client("s3")
        try:
            return getattr(s3, operation)(Bucket=self.bucket, Key=self.key)
        except s3.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                raise ModelNotFound(self.uri, "no such object; train one with `make model` and publish it "
                                              "(`python -m scengrid.inference.publish`)") from None
            raise

    def latest_version(self) -> str:
        return _declared_sha(self.uri, self._request("head_object").get("Metadata", {}))

    def fetch(self, cache_dir: Path, expected: str | None) -> tuple[Path, str]:
        if expected is not None:
            cached = cache_dir / f"{expected}.onnx"
            if cached.is_file() and sha256_file(cached) == expected:
                return cached, expected
        obj = self._request("get_object")
        declared = _declared_sha(self.uri, obj.get("Metadata", {}))
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cache_dir / f".download-{uuid.uuid4().hex}"
        try:
            with partial.open("wb") as out:
                for chunk in obj["Body"].iter_chunks(_CHUNK):
                    out.write(chunk)
            actual = sha256_file(partial)
            if actual != declared:
                raise ModelChecksumMismatch(self.uri, f"its metadata says SHA-256 {declared} but its bytes hash to {actual}; "
                                                      "re-upload it with `python -m scengrid.inference.publish`")
            final = cache_dir / f"{declared}.onnx"
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        return final, declared


class FileModelSource(ModelSource):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.uri = str(path)

    def latest_version(self) -> str:
        if not self.path.is_file():
            raise ModelNotFound(self.uri, "no such file")
        sidecar = checksum_file(self.path)
        if not sidecar.is_file():
            raise ModelInvalid(self.uri, f"no SHA-256 beside it ({sidecar.name}); `make model` writes one")
        sha = (sidecar.read_text().split() or [""])[0].lower()
        if not SHA256_PATTERN.match(sha):
            raise ModelInvalid(self.uri, f"{sidecar.name} does not hold a SHA-256")
        return sha

    def fetch(self, cache_dir: Path, expected: str | None) -> tuple[Path, str]:
        declared = self.latest_version()
        actual = sha256_file(self.path)
        if actual != declared:
            raise ModelChecksumMismatch(self.uri, f"{checksum_file(self.path).name} says {declared} but the file hashes to {actual}")
        return self.path, declared


def model_source(uri: str) -> ModelSource:
    if not uri:
        raise ModelNotFound("(not set)", "set SCENGRID_MODEL_URI to s3://bucket/key or to the path of a baked-in model")
    if uri.startswith("s3://"):
        return S3ModelSource(uri)
    return FileModelSource(Path(uri.removeprefix("file://")))


def session_options(threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return options


def open_session(path: Path, uri: str, threads: int) -> tuple[Any, str, str]:
    """A session on the model file, checked against the contract: (session, input, output)."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for unreadable and invalid graphs
        first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ModelInvalid(uri, f"not a loadable ONNX model ({type(exc).__name__}: {first_line})") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    expected = f"one (rows, {len(FEATURES)}) float tensor: {', '.join(FEATURES)}"
    if len(inputs) != 1 or inputs[0].type != "tensor(float)" or len(inputs[0].shape) != 2:
        raise ModelInvalid(uri, f"takes {len(inputs)} input(s) {[i.type for i in inputs]}; the contract is {expected}")
    width = inputs[0].shape[1]
    if width != len(FEATURES):
        raise ModelInvalid(uri, f"takes {width} features per row; the contract has {len(FEATURES)}: {', '.join(FEATURES)} "
                                "(retrain with `make model`)")
    trained_on = session.get_modelmeta().custom_metadata_map.get("features")
    if trained_on is not None and trained_on.split(",") != list(FEATURES):
        raise ModelInvalid(uri, f"was trained on the features {trained_on}; the contract is {','.join(FEATURES)}")
    names = [o.name for o in outputs]
    return session, inputs[0].name, "pd" if "pd" in names else names[0]


class ModelHolder:
    """The process's model (see the module's docstring). Thread safe."""

    def __init__(self, source: ModelSource, cache_dir: Path, check_s: float, threads: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.cache_dir = cache_dir
        self.check_s = check_s
        self.threads = threads
        self._clock = clock
        self._loaded: LoadedModel | None = None
        self._checked_at = -math.inf
        self._lock = threading.Lock()
        self.loads = 0  # successful loads, for metrics and tests

    def get(self) -> LoadedModel:
        with self._lock:
            now = self._clock()
            loaded = self._loaded
            if loaded is not None and now - self._checked_at < self.check_s:
                return loaded
            if loaded is None:
                loaded = self._load(None)
            else:
                version = self.source.latest_version()
                if version != loaded.version:
                    loaded = self._load(version)
            self._loaded, self._checked_at = loaded, now
            return loaded

    def _load(self, expected: str | None) -> LoadedModel:
        started = time.perf_counter()
        path, version = self.source.fetch(self.cache_dir, expected)
        fetched = time.perf_counter()
        session, input_name, output_name = open_session(path, self.source.uri, self.threads)
        opened = time.perf_counter()
        self._evict(keep=path)
        self.loads += 1
        return LoadedModel(self.source.uri, version, session, input_name, output_name,
                           round(fetched - started, 6), round(opened - fetched, 6))

    def _evict(self, keep: Path) -> None:
        """Older versions leave /tmp (512 MB by default on Lambda)."""
        if not self.cache_dir.is_dir():
            return
        for old in self.cache_dir.glob("*.onnx"):
            if old != keep:
                old.unlink(missing_ok=True)


_current: tuple[tuple[str, str, float], ModelHolder] | None = None
_current_lock = threading.Lock()


def model_holder(settings: Settings | None = None) -> ModelHolder:
    """The process's holder for the configured model; a new one when the configuration changed."""
    global _current
    settings = settings or get_settings()
    key = (settings.model_uri, settings.model_cache_dir, settings.model_check_s)
    with _current_lock:
        if _current is None or _current[0] != key:
            source = model_source(settings.model_uri)
            _current = (key, ModelHolder(source, Path(settings.model_cache_dir), settings.model_check_s, cpu_count()))
        return _current[1]


def predict(request: RowsRequest | ColumnsRequest | GridRequest, model: LoadedModel) -> dict[str, Any]:
    """The response to a validated request (see contract.py)."""
    pd = model.predict(request.features())
    return {
        "predictions": np.round(pd.astype(np.float64), PREDICTION_DECIMALS).tolist(),
        "shape": request.shape(),
        "model_version": model.version,
    }
