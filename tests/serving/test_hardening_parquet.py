"""Issue 21, item 1: a score file's memory is bounded whatever its compression ratio.

The 200,000-row limit was checked after `pd.read_parquet` had decoded everything, so a 511 KB
zstd Parquet of 20 million dictionary-encoded rows grew a worker by 1.9 GB. Now the footer's row
count and uncompressed size are checked before any page is decoded, text columns are sized while
still dictionary-encoded, and a CSV's rows are counted while it is parsed.
(benchmarks/memory_bombs.py measures the worker's RSS for the same files.)
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.errors import InputError
from runtime.risk import tables
from runtime.risk.tables import read_table
from serving.risk import MAX_FILE_BYTES, MAX_FILE_ROWS


def dictionary_parquet(rows: int, value: str) -> bytes:
    """`rows` rows of one enterprise id, dictionary-encoded and zstd-compressed: tiny on disk."""
    ids = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array([value]))
    buffer = io.BytesIO()
    pq.write_table(pa.table({"enterprise_id": ids}), buffer, compression="zstd", use_dictionary=True)
    return buffer.getvalue()


@pytest.fixture
def nothing_decodes_fully(monkeypatch):
    """Fail the test if the whole file is decoded into pandas (what the bomb must never reach)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the file was decoded in full")

    monkeypatch.setattr(pd, "read_parquet", refuse)


def read(data: bytes, name: str = "bomb.parquet") -> pd.DataFrame:
    return read_table(data, max_bytes=MAX_FILE_BYTES, max_rows=MAX_FILE_ROWS, filename=name)


def test_a_row_bomb_is_refused_from_the_footer(nothing_decodes_fully):
    bomb = dictionary_parquet(2_000_000, "E1")
    assert len(bomb) < 200_000  # ten times the row limit in a few KB
    with pytest.raises(InputError) as refused:
        read(bomb)
    assert refused.value.status_code == 413 and refused.value.field == "file"
    assert "declares 2000000 rows; the limit is 200000" in refused.value.message


def test_a_dictionary_that_expands_past_the_limit_is_refused_before_pandas(nothing_decodes_fully):
    bomb = dictionary_parquet(600, "x" * 1_000_000)  # 600 MB of text once decoded
    assert len(bomb) < 2_000_000
    with pytest.raises(InputError) as refused:
        read(bomb)
    assert refused.value.status_code == 413 and "expands to" in refused.value.message


def test_a_csv_stops_parsing_past_the_row_limit(monkeypatch):
    """Rows past the limit are never parsed: a broken line after them does not matter."""
    monkeypatch.setattr(tables, "CSV_CHUNK_ROWS", 1_000)
    data = b"enterprise_id\n" + b"E1\n" * (MAX_FILE_ROWS + 1_000_000) + b'"never closed\n'
    with pytest.raises(InputError) as refused:
        read(data, "rows.csv")
    assert refused.value.status_code == 413 and f"more than {MAX_FILE_ROWS} rows" in refused.value.message


def test_files_within_the_limits_read_as_before():
    frame = pd.DataFrame({"enterprise_id": ["A", "B", None], "headcount": [1, 2, 3]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    pd.testing.assert_frame_equal(read(buffer.getvalue()), pd.read_parquet(io.BytesIO(buffer.getvalue())))
    csv = read(b"enterprise_id,headcount\nA,1\nB,2\n", "ok.csv")
    assert csv.to_dict("list") == {"enterprise_id": ["A", "B"], "headcount": ["1", "2"]}


def test_the_score_file_endpoint_answers_the_bomb_413(api):
    response = api.post(
        "/v1/enterprises/score-file",
        files={"file": ("bomb.parquet", dictionary_parquet(2_000_000, "E1"), "application/octet-stream")},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["field"] == "file"
