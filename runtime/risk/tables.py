"""Profile files in and result tables out: a CSV or Parquet upload as a DataFrame, a table as CSV bytes.

A request's memory is bounded whatever the file's compression ratio: a 511 KB zstd Parquet can
declare 20 million dictionary-encoded rows (2 GB decoded). The Parquet footer's row count and
uncompressed size are checked before any page is decoded, and the decoded size of its text
columns (dictionary pages expand on decoding) is summed from the still-encoded dictionaries;
a CSV's rows are counted while it is parsed, chunk by chunk, and parsing stops past the limit.
"""

from __future__ import annotations

import io

import pandas as pd

from runtime.errors import InputError
from runtime.safe_csv import frame_to_csv_bytes

MAX_COLUMNS = 1_000  # the schema has a few dozen; a file of 100,000 columns is not a profile table
MAX_DECODED_BYTES = 512 * 1024 * 1024  # what a file may expand to in memory, whatever it compresses to
CSV_CHUNK_ROWS = 50_000


def read_table(
    data: bytes,
    *,
    max_bytes: int,
    max_rows: int,
    filename: str = "",
    content_type: str = "",
    max_decoded_bytes: int = MAX_DECODED_BYTES,
) -> pd.DataFrame:
    """A CSV (all cells as text) or Parquet upload as a DataFrame, within the size limits."""
    if not data:
        raise InputError("file", "is empty; upload a CSV or Parquet file with one enterprise per row")
    if len(data) > max_bytes:
        raise InputError("file", f"is {len(data)} bytes; the limit is {max_bytes} bytes", status_code=413)
    is_parquet = filename.lower().endswith((".parquet", ".pq")) or "parquet" in content_type or data[:4] == b"PAR1"
    try:
        if is_parquet:
            frame = _read_parquet(data, max_rows=max_rows, max_decoded_bytes=max_decoded_bytes)
        else:
            frame = _read_csv(data, max_rows=max_rows)
    except InputError:
        raise
    except Exception as error:  # any parser failure is the client's file, not a server error
        kind = "Parquet" if is_parquet else "CSV"
        raise InputError("file", f"could not be read as {kind}: {error}") from error
    if frame.empty:
        raise InputError("file", "has no rows; upload one enterprise per row")
    return frame


def _too_many_rows(rows: int, max_rows: int, *, counted: str = "has") -> InputError:
    return InputError("file", f"{counted} {rows} rows; the limit is {max_rows} rows per file", status_code=413)


def _too_large(size: int, max_decoded_bytes: int, what: str) -> InputError:
    return InputError(
        "file",
        f"{what} {size} bytes once decompressed; the limit is {max_decoded_bytes} bytes (a compression bomb?)",
        status_code=413,
    )


def _read_parquet(data: bytes, *, max_rows: int, max_decoded_bytes: int) -> pd.DataFrame:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(io.BytesIO(data))
    metadata = parquet.metadata  # the footer only: nothing is decoded yet
    if metadata.num_rows > max_rows:
        raise _too_many_rows(metadata.num_rows, max_rows, counted="declares")
    if metadata.num_columns > MAX_COLUMNS:
        raise InputError("file", f"has {metadata.num_columns} columns; at most {MAX_COLUMNS}", status_code=413)
    uncompressed = sum(metadata.row_group(index).total_byte_size for index in range(metadata.num_row_groups))
    if uncompressed > max_decoded_bytes:
        raise _too_large(uncompressed, max_decoded_bytes, "declares")
    # Text columns stay dictionary-encoded here, so a dictionary page of one 1 MB value repeated
    # 200,000 times costs 1 MB until its decoded size is known.
    text = [field.name for field in parquet.schema_arrow if _is_text(field.type)]
    table = pq.ParquetFile(io.BytesIO(data), read_dictionary=text).read()
    if table.num_rows > max_rows:  # a footer that understated its rows
        raise _too_many_rows(table.num_rows, max_rows)
    decoded = sum(_decoded_bytes(column) for column in table.columns)
    del table
    if decoded > max_decoded_bytes:
        raise _too_large(decoded, max_decoded_bytes, "expands to")
    return pd.read_parquet(io.BytesIO(data))  # within bounds now: pandas' own types, as before


def _is_text(data_type) -> bool:
    import pyarrow as pa

    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type) or pa.types.is_binary(data_type)


def _decoded_bytes(column) -> int:
    """The bytes a column takes once its dictionaries are expanded (its own size for other types)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    total = 0
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            lengths = pc.binary_length(chunk.dictionary)
            total += (pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0) + 8 * len(chunk)  # text + offsets
        else:
            total += chunk.nbytes
    return total


def _read_csv(data: bytes, *, max_rows: int) -> pd.DataFrame:
    chunks, rows = [], 0
    reader = pd.read_csv(
        io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig", chunksize=CSV_CHUNK_ROWS
    )
    with reader:
        for chunk in reader:
            rows += len(chunk)
            if rows > max_rows:
                raise InputError(  # parsing stops here: the rest of the file is never decoded
                    "file", f"has more than {max_rows} rows; the limit is {max_rows} rows per file", status_code=413
                )
            chunks.append(chunk)
    return pd.concat(chunks, ignore_index=True) if len(chunks) != 1 else chunks[0]


def table_to_csv(table: pd.DataFrame) -> bytes:
    """Formula-safe CSV bytes (runtime/safe_csv.py): an enterprise id like `=cmd|...` is echoed as text."""
    return frame_to_csv_bytes(table)
