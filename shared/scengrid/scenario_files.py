"""Scenario files: a Parquet file of shocks (one row per scenario, one column per factor) and a
JSON file of named stress scenarios. Checked once when a run is submitted (columns, types,
finite values, factor names); read by row range in the workers."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scengrid.errors import InvalidInput
from scengrid.user_files import open_user_file, read_user_file

SCENARIO_ID = "scenario_id"
DATE = "date"
FIELD = "scenarios.uri"
_BATCH = 65_536


def _unknown_factor(name: str, known: tuple[str, ...], where: str) -> InvalidInput:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; the model's factors are {', '.join(known[:12])}"
    return InvalidInput(FIELD, f"{where}: {name!r} is not a factor of the model{hint}")


class ParquetLayout:
    """A Parquet scenario file's columns, checked against the model's factors."""

    def __init__(self, uri: str, factor_names: tuple[str, ...], id_column: bool) -> None:
        self.uri = uri
        self.handle = open_user_file(uri, FIELD)
        try:
            self.file = pq.ParquetFile(self.handle)
        except (pa.ArrowException, OSError) as exc:
            self.handle.close()
            raise InvalidInput(FIELD, f"{uri} is not a readable Parquet file ({exc})") from None
        self.rows = self.file.metadata.num_rows
        schema = self.file.schema_arrow
        if id_column and SCENARIO_ID not in schema.names:
            raise InvalidInput(FIELD, f"{uri}: the column {SCENARIO_ID!r} is missing (it numbers the rows 0..n-1)")
        index = {name: i for i, name in enumerate(factor_names)}
        allowed = {SCENARIO_ID} if id_column else {SCENARIO_ID, DATE}
        self.factor_columns = [name for name in schema.names if name not in allowed]
        for name in self.factor_columns:
            if name not in index:
                raise _unknown_factor(name, factor_names, f"{uri}: column")
            kind = schema.field(name).type
            if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
                raise InvalidInput(FIELD, f"{uri}: column {name!r} has type {kind}; factor shocks must be numbers")
        if id_column and not pa.types.is_integer(schema.field(SCENARIO_ID).type):
            raise InvalidInput(FIELD, f"{uri}: column {SCENARIO_ID!r} has type {schema.field(SCENARIO_ID).type}; use integers")
        if self.rows == 0:
            raise InvalidInput(FIELD, f"{uri} has no rows")
        self.model_columns = np.array([index[name] for name in self.factor_columns], dtype=np.int64)

    def batches(self, first_group: int = 0, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        groups = list(range(first_group, self.file.metadata.num_row_groups))
        try:
            yield from self.file.iter_batches(batch_size=_BATCH, row_groups=groups, columns=columns)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(FIELD, f"{self.uri} cannot be decoded ({exc})") from None

    def close(self) -> None:
        self.handle.close()


def check_parquet_file(uri: str, factor_names: tuple[str, ...], id_column: bool) -> int:
    """Read the whole file once: every shock finite and present, ``scenario_id`` the row number.
    Returns the number of rows."""
    layout = ParquetLayout(uri, factor_names, id_column)
    try:
        columns = layout.factor_columns + ([SCENARIO_ID] if id_column else [])
        offset = 0
        for batch in layout.batches(columns=columns):
            _check_batch(uri, batch, offset, id_column)
            offset += batch.num_rows
        return layout.rows
    finally:
        layout.close()


def _check_batch(uri: str, batch: pa.RecordBatch, offset: int, id_column: bool) -> None:
    for name in batch.schema.names:
        column = batch.column(name)
        if column.null_count:
            row = offset + int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise InvalidInput(FIELD, f"{uri}: column {name!r} is empty (null) in row {row}")
        values = column.to_numpy()
        if name == SCENARIO_ID:
            wrong = np.flatnonzero(values != np.arange(offset, offset + values.shape[0]))
            if wrong.size:
                row = offset + int(wrong[0])
                raise InvalidInput(FIELD, f"{uri}: {SCENARIO_ID} must be the row number; row {row} has {values[wrong[0]]}")
        elif values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            row = offset + int(np.flatnonzero(~np.isfinite(values))[0])
            raise InvalidInput(FIELD, f"{uri}: column {name!r} has {values[row - offset]} in row {row}; shocks must be finite")


class ParquetShocks:
    """Reads rows of a checked Parquet file as (count, F) shocks in the model's columns. Reads
    are sequential in the kernel, so it streams batches forward and keeps only what is ahead."""

    def __init__(self, uri: str, factor_names: tuple[str, ...], id_column: bool) -> None:
        self._layout = ParquetLayout(uri, factor_names, id_column)
        self._width = len(factor_names)
        metadata = self._layout.file.metadata
        self._group_starts = np.cumsum([0] + [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)])
        self._buffer = np.zeros((0, len(self._layout.factor_columns)))
        self._buffer_start = 0
        self._stream: Iterator[pa.RecordBatch] | None = None

    @property
    def rows(self) -> int:
        return self._layout.rows

    def read(self, start: int, count: int) -> np.ndarray:
        if not (self._stream is not None and self._buffer_start <= start <= self._buffer_start + self._buffer.shape[0]):
            self._restart_at(start)
        self._buffer = self._buffer[start - self._buffer_start :]
        self._buffer_start = start
        while self._buffer.shape[0] < count:
            batch = next(self._stream, None)
            if batch is None:
                raise InvalidInput(FIELD, f"{self._layout.uri} has {self.rows} rows; rows up to {start + count} were asked for")
            self._buffer = np.concatenate([self._buffer, _batch_matrix(batch)])
        shocks = np.zeros((count, self._width))
        shocks[:, self._layout.model_columns] = self._buffer[:count]
        return shocks

    def read_all(self) -> np.ndarray:
        return self.read(0, self.rows)

    def _restart_at(self, start: int) -> None:
        group = int(np.searchsorted(self._group_starts, start, side="right") - 1)
        self._stream = self._layout.batches(group, self._layout.factor_columns)
        self._buffer = np.zeros((0, len(self._layout.factor_columns)))
        self._buffer_start = int(self._group_starts[group])
        while self._buffer_start + self._buffer.shape[0] <= start:
            self._buffer_start += self._buffer.shape[0]
            batch = next(self._stream, None)
            if batch is None:
                raise InvalidInput(FIELD, f"{self._layout.uri} has {self.rows} rows; row {start} was asked for")
            self._buffer = _batch_matrix(batch)

    def close(self) -> None:
        self._layout.close()


def _batch_matrix(batch: pa.RecordBatch) -> np.ndarray:
    if batch.num_columns == 0:
        return np.zeros((batch.num_rows, 0))
    return np.column_stack([batch.column(i).to_numpy().astype(np.float64, copy=False) for i in range(batch.num_columns)])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class StressScenario(_Strict):
    name: str = Field(min_length=1, max_length=200)
    shocks: dict[str, float]


class StressFile(_Strict):
    scenarios: list[StressScenario] = Field(min_length=1, max_length=1_000_000)


def read_stress_file(uri: str, factor_names: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """The names and the (S, F) shocks of a named-stress file."""
    try:
        parsed = StressFile.model_validate(json.loads(read_user_file(uri, FIELD)))
    except json.JSONDecodeError as exc:
        raise InvalidInput(FIELD, f"{uri} is not JSON ({exc.msg}, line {exc.lineno})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(FIELD, f"{uri}: {where}: {first['msg']}") from None
    index = {name: i for i, name in enumerate(factor_names)}
    names = [s.name for s in parsed.scenarios]
    duplicate = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if duplicate is not None:
        raise InvalidInput(FIELD, f"{uri}: the stress scenario name {duplicate!r} is used twice")
    shocks = np.zeros((len(names), len(factor_names)))
    for row, scenario in enumerate(parsed.scenarios):
        for factor, value in scenario.shocks.items():
            if factor not in index:
                raise _unknown_factor(factor, factor_names, f"{uri}: scenario {scenario.name!r}")
            shocks[row, index[factor]] = value
    return names, shocks
