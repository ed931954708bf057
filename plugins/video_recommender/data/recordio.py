"""RecordIO-protobuf (``application/x-recordio-protobuf``) encoder and reader.

The encoder reproduces, byte for byte, what the SageMaker Python SDK v2's
``write_spmatrix_to_sparse_tensor`` writes (SDK v3 can no longer write it). The
SDK builds one protobuf object per row in a Python loop; this encoder computes
every record's layout with whole-array numpy operations and scatters the bytes
into one buffer, which is what makes it fast (see benchmarks/recordio_encode.py).
Rows with the same number of nonzeros and key bytes have the same record but for
their values, keys and label; when a matrix has few such layouts (one-hot rows have
two or three), each layout's rows are filled from a template and copied as 4-byte
words, about twice as fast as scattering field by field.

Decoding uses the ``protobuf`` library (a well-kept C implementation) with the
``aialgs.data.Record`` schema built at runtime, so no generated code is vendored.

Layout of one sparse row with a label, as SDK v2 writes it::

    magic 0a23d7ce | uint32 length | Record | zero padding to 4 bytes
    Record   = 0a len(F) F [12 len(L) L]
    F        = 0a 06 "values" 12 len(Vf) Vf        (features map entry)
    Vf       = <tensor field tag> len(T) T         (Value oneof)
    T        = [0a len values] [12 len keys-varints] 1a len shape-varint
    L        = 0a 06 "values" 12 len(Vl) Vl, Vl = <tag> len(Tl) Tl, Tl = 0a len value
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LENGTH_MASK = (1 << 29) - 1

# numpy dtype -> (Value oneof field tag byte, bytes per packed value)
_TENSOR_TAG = {np.dtype(np.float32): (0x12, 4), np.dtype(np.float64): (0x1A, 8)}
_MAP_KEY = b"\x0a\x06values"  # map entry key field: "values"


class RecordIOError(ValueError):
    """Raised for bytes that are not valid RecordIO-protobuf."""


@dataclass(frozen=True)
class SparseRows:
    """A CSR matrix without a scipy dependency: row ``i`` holds
    ``values[indptr[i]:indptr[i+1]]`` at columns ``indices[indptr[i]:indptr[i+1]]``."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    n_cols: int

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def from_matrix(cls, matrix: object) -> SparseRows:
        """Accept a ``SparseRows`` or anything CSR-like (scipy.sparse with ``tocsr``)."""
        if isinstance(matrix, SparseRows):
            return matrix
        tocsr = getattr(matrix, "tocsr", None)
        if tocsr is None:
            raise TypeError(f"expected SparseRows or a scipy.sparse matrix, got {type(matrix).__name__}")
        csr = tocsr()
        return cls(csr.indptr, csr.indices, csr.data, int(csr.shape[1]))

    def slice_rows(self, start: int, stop: int) -> SparseRows:
        lo, hi = int(self.indptr[start]), int(self.indptr[stop])
        return SparseRows(self.indptr[start : stop + 1] - lo, self.indices[lo:hi], self.values[lo:hi], self.n_cols)


# ---------------------------------------------------------------- varints


def _varint_len(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.uint64)
    n = np.ones(x.shape, dtype=np.int64)
    top = int(x.max(initial=0))
    for k in range(1, 10):
        if top < 1 << (7 * k):  # no value needs more bytes: skip the remaining passes
            break
        n += x >= np.uint64(1 << (7 * k))
    return n


def _scatter_varints(buf: np.ndarray, starts: np.ndarray, x: np.ndarray) -> None:
    """Write the protobuf varint of each ``x[i]`` into ``buf`` at ``starts[i]``."""
    x = np.asarray(x, dtype=np.uint64)
    lens = _varint_len(x)
    for k in range(int(lens.max(initial=0))):
        sel = lens > k
        byte = (x[sel] >> np.uint64(7 * k)) & np.uint64(0x7F)
        byte |= np.where(lens[sel] > k + 1, np.uint64(0x80), np.uint64(0))
        buf[starts[sel] + k] = byte.astype(np.uint8)


def _scatter_const(buf: np.ndarray, starts: np.ndarray, const: bytes) -> None:
    for k, b in enumerate(const):
        buf[starts + k] = b


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# ---------------------------------------------------------------- encoder


def _tensor_dtype(arr: np.ndarray, what: str) -> tuple[int, int]:
    try:
        return _TENSOR_TAG[arr.dtype]
    except KeyError:
        raise TypeError(
            f"{what} dtype {arr.dtype} is not supported: use float32 (SageMaker FM reads Float32 tensors only)"
        ) from None


# Rows sharing (nonzeros, key bytes) share every byte of their record but the values,
# keys and label; with at most this many such layouts (one-hot rows have 2 or 3), rows
# are encoded layout by layout from a template instead of field by field.
_MAX_LAYOUTS = 16
_SCATTER_ROWS = 1 << 16


def encode_sparse(matrix: object, labels: np.ndarray | None = None, *, by_layout: bool = True) -> bytes:
    """Encode rows of a sparse matrix (and optional scalar labels) as RecordIO-protobuf.

    Byte-identical to SageMaker SDK v2 ``write_spmatrix_to_sparse_tensor(f, matrix, labels)``
    for float32 and float64 inputs. ``by_layout=False`` forces the field-by-field path
    (for tests; both write the same bytes).
    """
    rows = SparseRows.from_matrix(matrix)
    values = np.ascontiguousarray(rows.values)
    feat_tag, feat_width = _tensor_dtype(values, "matrix")
    n = rows.n_rows
    indptr = np.asarray(rows.indptr, dtype=np.int64)
    keys = np.asarray(rows.indices, dtype=np.uint64)
    nnz = np.diff(indptr)
    if labels is not None:
        labels = np.ascontiguousarray(labels)
        if labels.ndim != 1 or len(labels) != n:
            raise ValueError(f"labels must be a 1-d array of {n} values, got shape {labels.shape}")
        label_tag, label_width = _tensor_dtype(labels, "labels")

    # Sizes of every nested message, per row (protobuf writes lengths before bodies).
    key_vlen = _varint_len(keys)
    key_cum = np.concatenate(([0], np.cumsum(key_vlen)))  # byte offset of each key in the packed stream
    key_bytes = key_cum[indptr[1:]] - key_cum[indptr[:-1]]
    val_bytes = nnz * feat_width
    shape_varint = _varint(rows.n_cols)
    has = nnz > 0
    t_len = (
        np.where(has, 1 + _varint_len(val_bytes) + val_bytes, 0)
        + np.where(has, 1 + _varint_len(key_bytes) + key_bytes, 0)
        + (2 + len(shape_varint))
    )
    v_len = 1 + _varint_len(t_len) + t_len
    f_len = len(_MAP_KEY) + 1 + _varint_len(v_len) + v_len
    rec_len = 1 + _varint_len(f_len) + f_len
    if labels is not None:
        label_entry = _label_entry(label_tag, label_width)
        rec_len = rec_len + len(label_entry) + label_width
    if n and int(rec_len.max()) > _LENGTH_MASK:
        raise ValueError("a row is too large for one RecordIO record (2**29 - 1 bytes)")
    frame_len = 8 + rec_len + (-rec_len % 4)
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(frame_len, out=starts[1:])
    buf = np.zeros(int(starts[-1]), dtype=np.uint8)
    if by_layout and n and bool(has.all()):
        layout_of_row = nnz * (int(key_bytes.max()) + 1) + key_bytes
        layouts, first_row, layout_index = np.unique(layout_of_row, return_index=True, return_inverse=True)
        if len(layouts) <= _MAX_LAYOUTS:
            # where each layout's values and keys start in its frame, from the sizes above
            # (the same fields the scatter path below writes one after another)
            f = first_row
            value_at = 8 + 1 + _varint_len(f_len[f]) + len(_MAP_KEY) + 1 + _varint_len(v_len[f]) + 1
            value_at += _varint_len(t_len[f]) + 1 + _varint_len(val_bytes[f])
            key_at = value_at + val_bytes[f] + 1 + _varint_len(key_bytes[f])
            layout = _RowLayout(rows, values, labels, rec_len, frame_len, value_at, key_at)
            templates = encode_sparse(
                SparseRows(*_take_rows(rows, first_row), rows.n_cols),
                None if labels is None else labels[first_row],
                by_layout=False,
            )
            layout.fill(buf, starts, templates, first_row, layout_index)
            return buf.tobytes()
    pos = starts[:-1].copy()

    _scatter_const(buf, pos, _MAGIC_BYTES)
    length_bytes = rec_len.astype("<u4").view(np.uint8).reshape(-1, 4)
    for k in range(4):
        buf[pos + 4 + k] = length_bytes[:, k]
    pos += 8

    # Record.features entry
    buf[pos] = 0x0A
    _scatter_varints(buf, pos + 1, f_len)
    pos += 1 + _varint_len(f_len)
    _scatter_const(buf, pos, _MAP_KEY + b"\x12")
    pos += len(_MAP_KEY) + 1
    _scatter_varints(buf, pos, v_len)
    pos += _varint_len(v_len)
    buf[pos] = feat_tag
    _scatter_varints(buf, pos + 1, t_len)
    pos += 1 + _varint_len(t_len)

    # Float tensor: values (packed), keys (packed varints), shape
    p = pos[has]
    buf[p] = 0x0A
    _scatter_varints(buf, p + 1, val_bytes[has])
    p = p + 1 + _varint_len(val_bytes[has])
    value_start = np.repeat(p - indptr[:-1][has] * feat_width, nnz[has]) + np.arange(len(keys)) * feat_width
    raw = values.view(np.uint8).reshape(-1, feat_width)
    for k in range(feat_width):
        buf[value_start + k] = raw[:, k]
    p = p + val_bytes[has]
    buf[p] = 0x12
    _scatter_varints(buf, p + 1, key_bytes[has])
    p = p + 1 + _varint_len(key_bytes[has])
    # a key's offset inside its row's packed keys: stream offset minus the row's first offset
    key_start = np.repeat(p - key_cum[indptr[:-1][has]], nnz[has]) + key_cum[:-1]
    _scatter_varints(buf, key_start, keys)
    pos[has] = p + key_bytes[has]
    _scatter_const(buf, pos, b"\x1a" + _varint(len(shape_varint)) + shape_varint)
    pos += 2 + len(shape_varint)

    if labels is not None:
        _scatter_const(buf, pos, label_entry)
        pos += len(label_entry)
        raw = labels.view(np.uint8).reshape(-1, label_width)
        for k in range(label_width):
            buf[pos + k] = raw[:, k]
    return buf.tobytes()


def _take_rows(rows: SparseRows, which: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays (indptr, indices, values) of the rows ``which``, in that order."""
    lo, nnz = rows.indptr[which], np.diff(rows.indptr)[which]
    indptr = np.concatenate(([0], np.cumsum(nnz)))
    take = np.repeat(lo - indptr[:-1], nnz) + np.arange(indptr[-1])
    return indptr, rows.indices[take], rows.values[take]


@dataclass(frozen=True)
class _RowLayout:
    """Per-row sizes computed by ``encode_sparse``, for filling records layout by layout."""

    rows: SparseRows
    values: np.ndarray
    labels: np.ndarray | None
    rec_len: np.ndarray
    frame_len: np.ndarray
    value_at: np.ndarray  # per layout: offset of the first value's bytes in the frame
    key_at: np.ndarray  # per layout: offset of the first key's varint in the frame

    def fill(
        self, buf: np.ndarray, starts: np.ndarray, templates: bytes, first_row: np.ndarray, layout_index: np.ndarray
    ) -> None:
        """Write every row's frame: its layout's template, then its own values, keys and label.

        ``templates`` holds the frame of each layout's first row, in layout order. The
        frame of a row is copied as 4-byte words (every frame is a multiple of 4 bytes).
        """
        words = buf.view(np.uint32)
        template_start = np.concatenate(([0], np.cumsum(self.frame_len[first_row])))
        template_bytes = np.frombuffer(templates, dtype=np.uint8)
        rows_by_layout = np.argsort(layout_index, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(layout_index))))
        for g, r0 in enumerate(first_row):
            members = rows_by_layout[bounds[g] : bounds[g + 1]]
            size = int(self.frame_len[r0])
            block = np.empty((len(members), size), dtype=np.uint8)
            block[:] = template_bytes[template_start[g] : template_start[g + 1]]
            self._fill_fields(block, members, int(r0), int(self.value_at[g]), int(self.key_at[g]))
            word_start = starts[members] // 4
            block_words = block.view(np.uint32)
            offsets = np.arange(size // 4)
            for lo in range(0, len(members), _SCATTER_ROWS):  # bounds the index array to a few MiB
                hi = lo + _SCATTER_ROWS
                words[word_start[lo:hi, None] + offsets] = block_words[lo:hi]

    def _fill_fields(self, block: np.ndarray, members: np.ndarray, r0: int, value_at: int, key_at: int) -> None:
        rows, width = self.rows, self.values.dtype.itemsize
        k = int(rows.indptr[r0 + 1] - rows.indptr[r0])
        rec_len = int(self.rec_len[r0])

        take = rows.indptr[members][:, None] + np.arange(k)
        block[:, value_at : value_at + k * width] = self.values[take].view(np.uint8).reshape(len(members), -1)
        keys = rows.indices[take].astype(np.uint64)
        lens = _varint_len(keys)
        within = np.cumsum(lens, axis=1) - lens
        at = (np.arange(len(members)) * block.shape[1])[:, None] + key_at + within
        _scatter_varints(block.reshape(-1), at.ravel(), keys.ravel())
        if self.labels is not None:
            label_width = self.labels.dtype.itemsize
            label_at = 8 + rec_len - label_width
            block[:, label_at : label_at + label_width] = self.labels[members].view(np.uint8).reshape(len(members), -1)


def _label_entry(tag: int, width: int) -> bytes:
    """Bytes of the label map entry up to (not including) the scalar's raw bytes."""
    tensor_len = 2 + width  # 0a <width> <value>
    value_len = 2 + tensor_len  # <tag> <tensor_len> tensor
    entry_len = len(_MAP_KEY) + 2 + value_len
    return bytes([0x12, entry_len]) + _MAP_KEY + bytes([0x12, value_len, tag, tensor_len, 0x0A, width])


def write_sparse(fileobj: BinaryIO, matrix: object, labels: np.ndarray | None = None) -> int:
    """Write ``encode_sparse(matrix, labels)`` to an open binary file; return bytes written."""
    data = encode_sparse(matrix, labels)
    fileobj.write(data)
    return len(data)


# ---------------------------------------------------------------- reader


def iter_record_payloads(data: bytes | memoryview, source: str = "<bytes>") -> Iterator[bytes]:
    """Yield each RecordIO payload, joining split records (cflag 1/2/3) as dmlc does."""
    view = memoryview(data)
    offset, size, parts = 0, len(view), []
    while offset < size:
        if size - offset < 8:
            raise RecordIOError(f"{source}: truncated record header at byte {offset}")
        magic, word = struct.unpack_from("<II", view, offset)
        if magic != MAGIC:
            raise RecordIOError(f"{source}: bad RecordIO magic {magic:#010x} at byte {offset}, expected {MAGIC:#010x}")
        cflag, length = word >> 29, word & _LENGTH_MASK
        start = offset + 8
        if start + length > size:
            raise RecordIOError(f"{source}: record at byte {offset} claims {length} bytes, only {size - start} left")
        payload = bytes(view[start : start + length])
        offset = start + length + (-length % 4)
        if cflag == 0:
            yield payload
        elif cflag == 1:
            parts = [payload]
        elif cflag in (2, 3):
            if not parts:
                raise RecordIOError(f"{source}: continuation segment without a first segment at byte {start - 8}")
            parts.append(payload)
            if cflag == 3:
                yield _MAGIC_BYTES.join(parts)
                parts = []
        else:
            raise RecordIOError(f"{source}: unknown cflag {cflag} at byte {start - 8}")
    if parts:
        raise RecordIOError(f"{source}: file ends inside a split record")


def record_message_class() -> type:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(
        name="video_recommender_record.proto", package="aialgs.data", syntax="proto2"
    )
    F = descriptor_pb2.FieldDescriptorProto
    for name, vtype in (
        ("Float32Tensor", F.TYPE_FLOAT),
        ("Float64Tensor", F.TYPE_DOUBLE),
        ("Int32Tensor", F.TYPE_INT32),
    ):
        msg = fdp.message_type.add(name=name)
        for field, number, ftype in (("values", 1, vtype), ("keys", 2, F.TYPE_UINT64), ("shape", 3, F.TYPE_UINT64)):
            fd = msg.field.add(name=field, number=number, type=ftype, label=F.LABEL_REPEATED)
            fd.options.packed = True
    msg = fdp.message_type.add(name="Bytes")
    msg.field.add(name="value", number=1, type=F.TYPE_BYTES, label=F.LABEL_REPEATED)
    msg.field.add(name="content_type", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    msg = fdp.message_type.add(name="Value")
    msg.oneof_decl.add(name="value")
    for field, number, tname in (
        ("float32_tensor", 2, "Float32Tensor"),
        ("float64_tensor", 3, "Float64Tensor"),
        ("int32_tensor", 7, "Int32Tensor"),
        ("bytes", 9, "Bytes"),
    ):
        msg.field.add(
            name=field,
            number=number,
            type=F.TYPE_MESSAGE,
            type_name=f".aialgs.data.{tname}",
            label=F.LABEL_OPTIONAL,
            oneof_index=0,
        )
    msg = fdp.message_type.add(name="Record")
    for field, number in (("features", 1), ("label", 2)):
        entry_name = field.capitalize() + "Entry"
        entry = msg.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
        entry.field.add(
            name="value", number=2, type=F.TYPE_MESSAGE, type_name=".aialgs.data.Value", label=F.LABEL_OPTIONAL
        )
        msg.field.add(
            name=field,
            number=number,
            type=F.TYPE_MESSAGE,
            label=F.LABEL_REPEATED,
            type_name=f".aialgs.data.Record.{entry_name}",
        )
    for field, number in (("uid", 3), ("metadata", 4), ("configuration", 5)):
        msg.field.add(name=field, number=number, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("aialgs.data.Record"))


_RECORD_CLASS: type | None = None


def parse_record(payload: bytes) -> object:
    """Parse one payload into an ``aialgs.data.Record`` protobuf message."""
    global _RECORD_CLASS
    if _RECORD_CLASS is None:
        _RECORD_CLASS = record_message_class()
    record = _RECORD_CLASS()
    record.ParseFromString(payload)
    return record


def _tensor(value: object) -> object:
    kind = value.WhichOneof("value")
    if kind not in ("float32_tensor", "float64_tensor", "int32_tensor"):
        raise RecordIOError(f"expected a numeric tensor, found {kind!r}")
    return getattr(value, kind)


def read_sparse(data: bytes, source: str = "<bytes>") -> tuple[SparseRows, np.ndarray | None]:
    """Decode RecordIO-protobuf sparse rows written by ``encode_sparse`` (or SageMaker).

    Returns the rows as float32 CSR and the float32 labels (``None`` when no record has one).
    Dense rows (values without keys) are accepted as rows with keys ``0..n-1``.
    """
    indptr, indices, values, labels = [0], [], [], []
    n_cols = 0
    for i, payload in enumerate(iter_record_payloads(data, source)):
        record = parse_record(payload)
        if "values" not in record.features:
            raise RecordIOError(f"{source}: record {i} has no features['values']")
        tensor = _tensor(record.features["values"])
        row_values = list(tensor.values)
        row_keys = list(tensor.keys) if len(tensor.keys) else list(range(len(row_values)))
        if len(row_keys) != len(row_values):
            raise RecordIOError(f"{source}: record {i} has {len(row_keys)} keys but {len(row_values)} values")
        if len(tensor.shape):
            n_cols = max(n_cols, int(tensor.shape[0]))
        else:
            n_cols = max(n_cols, len(row_values))
        indices.extend(row_keys)
        values.extend(row_values)
        indptr.append(len(indices))
        if "values" in record.label:
            label_values = _tensor(record.label["values"]).values
            labels.append(label_values[0] if len(label_values) else np.nan)
        else:
            labels.append(np.nan)
    label_array = np.asarray(labels, dtype=np.float32)
    rows = SparseRows(
        np.asarray(indptr, dtype=np.int64),
        np.asarray(indices, dtype=np.int64),
        np.asarray(values, dtype=np.float32),
        n_cols,
    )
    return rows, (None if np.isnan(label_array).all() else label_array)
