"""RecordIO-protobuf: byte layout, SDK v2 byte identity, round trips and bad input."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from video_recommender.data.recordio import (
    MAGIC,
    RecordIOError,
    SparseRows,
    encode_sparse,
    iter_record_payloads,
    read_sparse,
)

FIXTURES = Path(__file__).parent / "fixtures" / "recordio"

# Hand-checked against the annotated dump in shared/reference/recordio-protobuf.md §3:
# a 2 x 5 one-hot matrix, row 0 has columns 0 and 3, label 1.0.
HAND_CHECKED_RECORD_0 = bytes.fromhex(
    "0a23d7ce"  # magic
    "33000000"  # length 51, cflag 0
    "0a1d"  # Record.features entry, 29 bytes
    "0a0676616c756573"  # key "values"
    "1213"  # Value, 19 bytes
    "1211"  # float32_tensor, 17 bytes
    "0a080000803f0000803f"  # values [1.0, 1.0]
    "12020003"  # keys [0, 3]
    "1a0105"  # shape [5]
    "1212"  # Record.label entry, 18 bytes
    "0a0676616c756573"  # key "values"
    "1208"  # Value, 8 bytes
    "1206"  # float32_tensor, 6 bytes
    "0a040000803f"  # values [1.0]
    "00"  # padding to 52
)


def tiny() -> tuple[SparseRows, np.ndarray]:
    rows = SparseRows(np.array([0, 2, 4]), np.array([0, 3, 1, 4]), np.ones(4, np.float32), 5)
    return rows, np.array([1.0, 0.0], np.float32)


def test_first_record_matches_hand_checked_bytes() -> None:
    rows, labels = tiny()
    data = encode_sparse(rows, labels)
    assert data[: len(HAND_CHECKED_RECORD_0)] == HAND_CHECKED_RECORD_0
    assert len(data) % 4 == 0


def test_label_zero_is_written_not_omitted() -> None:
    rows, labels = tiny()
    second = encode_sparse(rows, labels)[len(HAND_CHECKED_RECORD_0) :]
    assert second[-7:] == bytes.fromhex("0a0400000000") + b"\x00"  # value 0.0, then one pad byte


@pytest.mark.parametrize("case", sorted(p.name.removesuffix(".npz") for p in FIXTURES.glob("*.npz")))
def test_byte_identical_to_sagemaker_sdk_v2(case: str) -> None:
    """Each .sdk_v2.bin was written by sagemaker 2.257.7's write_spmatrix_to_sparse_tensor."""
    z = np.load(FIXTURES / f"{case}.npz")
    rows = SparseRows(z["indptr"], z["indices"], z["data"], int(z["n_cols"]))
    labels = z["labels"] if "labels" in z else None
    expected = (FIXTURES / f"{case}.sdk_v2.bin").read_bytes()
    assert encode_sparse(rows, labels) == expected
    assert encode_sparse(rows, labels, by_layout=False) == expected


def test_sdk_fixtures_reach_both_encoder_paths(monkeypatch) -> None:
    """The byte-identity cases above cover the layout-by-layout path and the field-by-field one."""
    from video_recommender.data import recordio

    by_layout: dict[str, bool] = {}
    fill = recordio._RowLayout.fill
    for path in sorted(FIXTURES.glob("*.npz")):
        used: list[bool] = []
        monkeypatch.setattr(
            recordio._RowLayout, "fill", lambda self, *a, _used=used: (_used.append(True), fill(self, *a))
        )
        z = np.load(path)
        encode_sparse(
            SparseRows(z["indptr"], z["indices"], z["data"], int(z["n_cols"])), z["labels"] if "labels" in z else None
        )
        by_layout[path.stem] = bool(used)
    assert by_layout["tiny_one_hot"] and by_layout["one_hot_large_keys"] and by_layout["float64"]
    assert not by_layout["random_sparse_with_empty_row"]  # an empty row has no values or keys fields


@pytest.mark.parametrize("seed", range(6))
def test_layout_by_layout_writes_the_bytes_of_field_by_field(seed: int) -> None:
    """Random rows: one-hot, 1-3 nonzeros, keys of 1-6 varint bytes, float32/float64, with and without labels."""
    rng = np.random.default_rng(seed)
    for trial in range(40):
        n = int(rng.integers(1, 400))
        n_cols = int(rng.choice([5, 300, 70_000, 2**40]))
        nnz = np.full(n, 2) if trial % 4 == 0 else rng.integers(1, 4, n)
        indptr = np.concatenate(([0], np.cumsum(nnz)))
        dtype = np.float64 if trial % 3 == 0 else np.float32
        rows = SparseRows(
            indptr, rng.integers(0, n_cols, indptr[-1]), rng.normal(size=indptr[-1]).astype(dtype), n_cols
        )
        labels = None if trial % 5 == 0 else rng.normal(size=n).astype(dtype if trial % 2 else np.float32)
        assert encode_sparse(rows, labels) == encode_sparse(rows, labels, by_layout=False), (seed, trial)


def test_fixture_set_covers_the_interesting_cases() -> None:
    names = {p.name for p in FIXTURES.glob("*.sdk_v2.bin")}
    assert {
        "tiny_one_hot.sdk_v2.bin",
        "one_hot_large_keys.sdk_v2.bin",
        "no_labels.sdk_v2.bin",
        "float64.sdk_v2.bin",
    } <= names
    assert len(names) >= 6


def test_round_trip_random_sparse_with_empty_rows() -> None:
    rng = np.random.default_rng(0)
    n, d = 500, 250_000
    nnz = rng.integers(0, 6, n)
    nnz[::17] = 0
    indptr = np.concatenate([[0], np.cumsum(nnz)])
    indices = np.concatenate([np.sort(rng.choice(d, k, replace=False)) for k in nnz]).astype(np.int64)
    values = rng.normal(size=len(indices)).astype(np.float32)
    labels = rng.normal(size=n).astype(np.float32)
    rows = SparseRows(indptr, indices, values, d)
    back, back_labels = read_sparse(encode_sparse(rows, labels))
    np.testing.assert_array_equal(back.indptr, indptr)
    np.testing.assert_array_equal(back.indices, indices)
    np.testing.assert_array_equal(back.values, values)
    np.testing.assert_array_equal(back_labels, labels)
    assert back.n_cols == d


def test_no_labels_read_back_as_none() -> None:
    rows, _ = tiny()
    _, labels = read_sparse(encode_sparse(rows))
    assert labels is None


def test_slice_rows_keeps_rows_and_dimension() -> None:
    rows, labels = tiny()
    part = rows.slice_rows(1, 2)
    back, back_labels = read_sparse(encode_sparse(part, labels[1:2]))
    assert back.indices.tolist() == [1, 4] and back.n_cols == 5 and back_labels.tolist() == [0.0]


def test_split_record_segments_are_joined() -> None:
    """dmlc splits a payload where the magic appears at an aligned offset (cflag 1, 2, 3)."""
    magic = struct.pack("<I", MAGIC)
    payload = b"abcd" + magic + b"efgh" + magic + b"ij"
    parts = payload.split(magic)

    def segment(flag: int, body: bytes) -> bytes:
        return magic + struct.pack("<I", (flag << 29) | len(body)) + body + b"\x00" * (-len(body) % 4)

    data = segment(1, parts[0]) + segment(2, parts[1]) + segment(3, parts[2])
    assert list(iter_record_payloads(data)) == [payload]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00\x00\x00\x04\x00\x00\x00abcd", "bad RecordIO magic"),
        (struct.pack("<II", MAGIC, 100) + b"short", "claims 100 bytes"),
        (struct.pack("<I", MAGIC), "truncated record header"),
    ],
)
def test_bad_bytes_name_the_source_and_offset(data: bytes, message: str) -> None:
    with pytest.raises(RecordIOError, match=message) as err:
        list(iter_record_payloads(data, source="s3://bucket/train.protobuf"))
    assert "s3://bucket/train.protobuf" in str(err.value)


def test_unsupported_dtype_and_label_length_are_rejected() -> None:
    rows, labels = tiny()
    with pytest.raises(TypeError, match="float32"):
        encode_sparse(SparseRows(rows.indptr, rows.indices, rows.values.astype(np.int16), 5), labels)
    with pytest.raises(ValueError, match="1-d array of 2 values"):
        encode_sparse(rows, labels[:1])
