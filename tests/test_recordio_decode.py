"""The engine's compiled RecordIO decoder gives exactly what the protobuf-library reader gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from video_recommender.data.recordio import RecordIOError, SparseRows, encode_sparse, read_sparse
from video_recommender.engine.recordio_decode import read_sparse_fast

FIXTURES = Path(__file__).parent / "fixtures" / "recordio"


def same(data: bytes) -> None:
    (a, la), (b, lb) = read_sparse(data), read_sparse_fast(data)
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.n_cols == b.n_cols
    assert (la is None) == (lb is None)
    if la is not None:
        np.testing.assert_array_equal(la, lb)


@pytest.mark.parametrize("case", sorted(p.name for p in FIXTURES.glob("*.sdk_v2.bin")))
def test_matches_the_general_reader_on_sdk_files(case: str) -> None:
    same((FIXTURES / case).read_bytes())  # float64 falls back to the general reader


def test_matches_on_random_rows_with_empty_rows_and_wide_keys() -> None:
    rng = np.random.default_rng(3)
    nnz = rng.integers(0, 5, 2000)
    indptr = np.concatenate([[0], np.cumsum(nnz)])
    indices = np.concatenate([np.sort(rng.choice(2**31, k, replace=False)) for k in nnz]).astype(np.int64)
    rows = SparseRows(indptr, indices, rng.normal(size=len(indices)).astype(np.float32), 2**31)
    same(encode_sparse(rows, rng.normal(size=2000).astype(np.float32)))
    same(encode_sparse(rows))


def test_bad_bytes_still_raise_with_the_source() -> None:
    with pytest.raises(RecordIOError, match=r"train\.protobuf"):
        read_sparse_fast(b"\x00" * 16, source="train.protobuf")
