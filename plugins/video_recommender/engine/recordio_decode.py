"""Compiled RecordIO-protobuf decoder for the engine's channels (numba).

Handles what FM consumes and SageMaker SDK v2 writes: unsplit records (cflag 0)
whose ``features["values"]`` is a sparse Float32Tensor (packed values, packed
keys, shape) and whose optional ``label["values"]`` is a Float32Tensor. Anything
else (dense rows, Float64/Int32 tensors, split records, unpacked encodings) is
handed to the general protobuf-library reader in ``data.recordio``, which also
reports malformed bytes; both give the same result (tested).

Why: the general reader parses one protobuf object per record (about 7 s for a
million training rows); this one decodes the same bytes in well under a second.
"""

from __future__ import annotations

import numba
import numpy as np

from video_recommender.data.recordio import MAGIC, SparseRows, read_sparse

_OK, _FALLBACK = 0, 1
_VALUES = np.frombuffer(b"values", dtype=np.uint8)


@numba.njit(cache=True, inline="always")
def _varint(buf, pos):  # pragma: no cover - compiled
    result = np.int64(0)
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= np.int64(b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


@numba.njit(cache=True, inline="always")
def _u32(buf, pos):  # pragma: no cover - compiled
    return (
        np.uint32(buf[pos])
        | (np.uint32(buf[pos + 1]) << 8)
        | (np.uint32(buf[pos + 2]) << 16)
        | (np.uint32(buf[pos + 3]) << 24)
    )


@numba.njit(cache=True)
def _entry(buf, start, end):  # pragma: no cover - compiled
    """A map entry: return (tensor_start, tensor_end) of its Float32Tensor, or -1 to fall back."""
    pos = start
    key_ok = False
    v_start, v_end = -1, -1
    while pos < end:
        tag, pos = _varint(buf, pos)
        length, pos = _varint(buf, pos)
        if tag == 0x0A:
            key_ok = length == 6
            if key_ok:
                for j in range(6):
                    if buf[pos + j] != _VALUES[j]:
                        key_ok = False
        elif tag == 0x12:
            v_start, v_end = pos, pos + length
        else:
            return -1, -1
        pos += length
    if not key_ok or v_start < 0:
        return -1, -1
    tag, pos = _varint(buf, v_start)  # Value oneof: only float32_tensor (field 2)
    if tag != 0x12:
        return -1, -1
    length, pos = _varint(buf, pos)
    if pos + length > v_end:
        return -1, -1
    return pos, pos + length


@numba.njit(cache=True, nogil=True)
def _decode(buf, fill, indptr, indices, values, labels):  # pragma: no cover - compiled
    """Two uses: ``fill=False`` counts (records, nnz, n_cols); ``fill=True`` writes the arrays."""
    bits = np.empty(1, dtype=np.uint32)
    as_float = bits.view(np.float32)  # reinterprets the 4 bytes of a packed float32
    n = len(buf)
    pos = 0
    rec = 0
    nnz = 0
    n_cols = 0
    has_label = False
    while pos < n:
        if pos + 8 > n or _u32(buf, pos) != MAGIC:
            return _FALLBACK, rec, nnz, n_cols, has_label
        word = _u32(buf, pos + 4)
        length = np.int64(word & np.uint32(0x1FFFFFFF))
        start = pos + 8
        end = start + length
        if (word >> np.uint32(29)) != 0 or end > n:
            return _FALLBACK, rec, nnz, n_cols, has_label
        p = start
        label = np.float32(np.nan)
        while p < end:
            tag, p = _varint(buf, p)
            if tag & 7 != 2:
                return _FALLBACK, rec, nnz, n_cols, has_label
            flen, p = _varint(buf, p)
            fend = p + flen
            if tag == 0x0A or tag == 0x12:  # features / label map entry
                t_start, t_end = _entry(buf, p, fend)
                if t_start < 0:
                    return _FALLBACK, rec, nnz, n_cols, has_label
                vals_start, vals_len, keys_start, keys_end, shape = -1, 0, -1, -1, -1
                q = t_start
                while q < t_end:
                    ttag, q = _varint(buf, q)
                    tlen, q = _varint(buf, q)
                    if ttag == 0x0A:
                        vals_start, vals_len = q, tlen
                    elif ttag == 0x12:
                        keys_start, keys_end = q, q + tlen
                    elif ttag == 0x1A:
                        shape, _ = _varint(buf, q)
                    else:
                        return _FALLBACK, rec, nnz, n_cols, has_label
                    q += tlen
                count = vals_len // 4
                if tag == 0x12:
                    if count >= 1:
                        bits[0] = _u32(buf, vals_start)
                        label = as_float[0]
                        has_label = True
                else:
                    if count > 0 and keys_start < 0:
                        return _FALLBACK, rec, nnz, n_cols, has_label  # dense row
                    k = keys_start
                    for j in range(count):
                        if k >= keys_end:
                            return _FALLBACK, rec, nnz, n_cols, has_label
                        key, k = _varint(buf, k)
                        if fill:
                            indices[nnz + j] = key
                            bits[0] = _u32(buf, vals_start + 4 * j)
                            values[nnz + j] = as_float[0]
                    if k != keys_end and count > 0:
                        return _FALLBACK, rec, nnz, n_cols, has_label
                    nnz += count
                    if shape > n_cols:
                        n_cols = shape
            p = fend
        if fill:
            labels[rec] = label
            indptr[rec + 1] = nnz
        rec += 1
        pos = end + ((4 - length % 4) % 4)
    return _OK, rec, nnz, n_cols, has_label


def read_sparse_fast(data: bytes, source: str = "<bytes>") -> tuple[SparseRows, np.ndarray | None]:
    """Same result as ``data.recordio.read_sparse``; compiled for FM's usual layout."""
    buf = np.frombuffer(data, dtype=np.uint8)
    empty_i, empty_f = np.zeros(1, np.int64), np.zeros(1, np.float32)
    status, n, nnz, n_cols, has_label = _decode(buf, False, empty_i, np.zeros(1, np.int32), empty_f, empty_f)
    if status != _OK:
        return read_sparse(data, source)
    indptr = np.zeros(n + 1, np.int64)
    # int32 keys halve the memory of FM's data whenever feature_dim allows (up to 2**31 - 1)
    indices = np.empty(nnz, np.int32 if n_cols < 2**31 else np.int64)
    values = np.empty(nnz, np.float32)
    labels = np.empty(n, np.float32)
    _decode(buf, True, indptr, indices, values, labels)
    return SparseRows(indptr, indices, values, int(n_cols)), (labels if has_label else None)
