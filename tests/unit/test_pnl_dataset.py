"""A shard file as the dataset stores it: rows ordered by (pnl, scenario_id), the worst 5% in
the first row group, the scenario range in the footer; and the merged export in scenario order."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from scengrid import pnl_dataset
from scengrid.pnl_dataset import group_range, head_rows, scenario_range, shard_bytes, shard_table, tail_bytes


def _columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rates = rng.normal(size=n)
    equity = rng.normal(size=n)
    pnl = rates + equity
    pnl[::50] = pnl[0]  # ties, to check their order
    return {"pnl": pnl, "pnl_rates": rates, "pnl_equity": equity}


def _parquet(start: int, columns: dict[str, np.ndarray]) -> pq.ParquetFile:
    return pq.ParquetFile(io.BytesIO(shard_bytes(shard_table(start, columns, {"model_version": "abc"}))))


@pytest.mark.parametrize("n", [1, 700, 1_024, 1_025, 100_000])
def test_rows_are_best_first_and_the_worst_are_the_last_row_group(n: int) -> None:
    columns = _columns(n)
    parquet = _parquet(5_000, columns)
    table = parquet.read()
    order = np.lexsort((np.arange(n), columns["pnl"]))[::-1]
    assert np.array_equal(table.column("scenario_id").to_numpy(), 5_000 + order)
    for name, values in columns.items():
        assert np.array_equal(table.column(name).to_numpy(), values[order])  # rows stay whole
    groups = [parquet.metadata.row_group(g).num_rows for g in range(parquet.metadata.num_row_groups)]
    assert groups == ([n - head_rows(n), head_rows(n)] if n > head_rows(n) else [n])
    assert table.column_names[-1] == "pnl"  # its chunk of the first group ends right before the last group
    assert head_rows(100_000) == 5_000 and head_rows(700) == 700
    assert scenario_range(parquet) == (5_000, 5_000 + n - 1)
    assert parquet.schema_arrow.metadata[b"scengrid.model_version"] == b"abc"


def test_the_files_end_holds_the_rest_s_pnl_the_head_and_the_footer_within_the_guess() -> None:
    """What the collator reads of a file in its one request: from the first group's pnl chunk
    to the end. The guess from the row and column counts covers it; and it is a fifth of the file."""
    columns = _columns(100_000, seed=1)
    body = shard_bytes(shard_table(0, columns))
    parquet = pq.ParquetFile(io.BytesIO(body))
    pnl = parquet.schema_arrow.get_field_index("pnl")
    start = group_range(parquet.metadata, 0, [pnl])[0]
    assert group_range(parquet.metadata, 1)[1] <= len(body)
    assert len(body) - start <= tail_bytes(100_000, len(columns) + 1)
    assert (len(body) - start) / len(body) < 0.33


def test_merge_writes_one_file_in_scenario_order_a_shard_at_a_time(tmp_path: Path) -> None:
    columns = _columns(10_000, seed=2)
    folder = tmp_path / "pnl"
    folder.mkdir()
    for shard, start in enumerate(range(0, 10_000, 3_000)):  # 4 shards, the last one short
        part = {k: v[start : start + 3_000] for k, v in columns.items()}
        (folder / f"{shard:06d}.parquet").write_bytes(shard_bytes(shard_table(start, part)))
    out = tmp_path / "pnl.parquet"
    assert pnl_dataset.merge_local(folder, out) == 10_000
    merged = pq.read_table(out)
    assert np.array_equal(merged.column("scenario_id").to_numpy(), np.arange(10_000))
    assert np.array_equal(merged.column("pnl").to_numpy(), columns["pnl"])
    local = pnl_dataset.read_local(folder, ["pnl"])
    assert local.column_names == ["scenario_id", "pnl"] and np.array_equal(local.column("pnl").to_numpy(), columns["pnl"])


def test_an_empty_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Parquet files in"):
        pnl_dataset.merge_local(tmp_path, tmp_path / "out.parquet")
