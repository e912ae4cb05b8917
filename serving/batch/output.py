"""The job's output: a folder of Parquet parts, each written to a temporary name and renamed.

A crash leaves whole parts and at most a stray `*.tmp` (removed at the next start), never a
half-written part, so the inputs already in the output are exactly those of its parts.
"""

from __future__ import annotations

import re
import uuid

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

PART_PATTERN = re.compile(r"part-(\d{6})\.parquet$")


class PartWriter:
    """Appends numbered Parquet parts to the folder `url` (local path or fsspec URL)."""

    def __init__(self, url: str):
        self.fs, self.root = fsspec.core.url_to_fs(url)
        self.fs.makedirs(self.root, exist_ok=True)
        for stray in self.fs.glob(f"{self.root}/*.tmp"):
            self.fs.rm(stray)
        self.next_index = 1 + max((int(m.group(1)) for m in map(PART_PATTERN.search, self.parts()) if m), default=-1)

    def parts(self) -> list[str]:
        return sorted(path for path in self.fs.glob(f"{self.root}/part-*.parquet") if PART_PATTERN.search(path))

    def done_keys(self, column: str) -> set[str]:
        """The values of `column` in the parts already written (the inputs a rerun skips)."""
        done: set[str] = set()
        for path in self.parts():
            with self.fs.open(path, "rb") as handle:
                done.update(str(value) for value in pq.read_table(handle, columns=[column]).column(column).to_pylist())
        return done

    def write(self, table: pa.Table) -> str:
        final = f"{self.root}/part-{self.next_index:06d}.parquet"
        temporary = f"{final}.{uuid.uuid4().hex}.tmp"
        try:
            with self.fs.open(temporary, "wb") as handle:
                pq.write_table(table, handle)
            self.fs.mv(temporary, final)
        except BaseException:
            if self.fs.exists(temporary):
                self.fs.rm(temporary)
            raise
        self.next_index += 1
        return final
