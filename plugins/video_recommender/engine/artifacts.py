"""FM model artifacts in SageMaker's layout.

``model.tar.gz`` holds one member, ``model_algo-1``: a zip archive with
``symbol.json`` (the MXNet symbol graph) and ``params`` (MXNet's NDArray-list file)
holding ``w0_weight`` (1,), ``w1_weight`` (feature_dim, 1) and ``v``
(feature_dim, num_factors). Names carry MXNet's ``arg:`` prefix, so the documented
recipe (``mx.module.Module.load``) finds them; the reader accepts names with or
without it.

NDArray-list file (MXNet ``NDArray::Save``, little-endian)::

    uint64 0x112 | uint64 0 | uint64 count | count x NDArray | uint64 count | count x (uint64 len, name)
    NDArray = uint32 0xF993FAC9 | int32 storage (0 = dense) | uint32 ndim | int64 dims[ndim]
              | int32 dev_type (1 = cpu) | int32 dev_id | int32 dtype (0 = float32) | data
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

LIST_MAGIC = 0x112
NDARRAY_V2_MAGIC = 0xF993FAC9
_FLOAT32 = 0
MEMBER = "model_algo-1"
# Fixed timestamp so identical parameters give identical bytes.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


class ModelArtifactError(ValueError):
    """The file is not an FM model artifact."""


@dataclass
class FMModel:
    w0: np.ndarray  # (1,) float32
    w: np.ndarray  # (feature_dim,) float32
    v: np.ndarray  # (feature_dim, num_factors) float32
    predictor_type: str = "regressor"

    @property
    def feature_dim(self) -> int:
        return int(self.v.shape[0])

    @property
    def num_factors(self) -> int:
        return int(self.v.shape[1])


def write_ndarray_list(out: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """Write MXNet's NDArray-list format to ``out``, array data straight from memory (no copies)."""
    out.write(struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays)))
    for arr in arrays.values():
        arr = np.ascontiguousarray(arr, dtype="<f4")
        out.write(struct.pack("<IiI", NDARRAY_V2_MAGIC, 0, arr.ndim))
        out.write(struct.pack(f"<{arr.ndim}q", *arr.shape))
        out.write(struct.pack("<iii", 1, 0, _FLOAT32))
        out.write(memoryview(arr).cast("B"))
    out.write(struct.pack("<Q", len(arrays)))
    for name in arrays:
        raw = name.encode()
        out.write(struct.pack("<Q", len(raw)) + raw)


def save_ndarray_list(arrays: dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    write_ndarray_list(out, arrays)
    return out.getvalue()


def load_ndarray_list(data: bytes, source: str = "params") -> dict[str, np.ndarray]:
    def take(fmt: str) -> tuple:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise ModelArtifactError(f"{source}: truncated at byte {pos}")
        values = struct.unpack_from(fmt, data, pos)
        pos += size
        return values

    pos = 0
    magic, _reserved, count = take("<QQQ")
    if magic != LIST_MAGIC:
        raise ModelArtifactError(f"{source}: not an MXNet NDArray list (magic {magic:#x}, expected {LIST_MAGIC:#x})")
    arrays = []
    for _ in range(count):
        nd_magic, stype, ndim = take("<IiI")
        if nd_magic != NDARRAY_V2_MAGIC or stype != 0:
            raise ModelArtifactError(f"{source}: unsupported NDArray (magic {nd_magic:#x}, storage {stype})")
        shape = take(f"<{ndim}q")
        _dev_type, _dev_id, dtype = take("<iii")
        if dtype != _FLOAT32:
            raise ModelArtifactError(f"{source}: unsupported NDArray dtype flag {dtype} (float32 = 0)")
        n = int(np.prod(shape)) if ndim else 0
        if pos + 4 * n > len(data):
            raise ModelArtifactError(f"{source}: truncated array data at byte {pos}")
        arrays.append(np.frombuffer(data, dtype="<f4", count=n, offset=pos).reshape(shape).astype(np.float32))
        pos += 4 * n
    (n_names,) = take("<Q")
    names = []
    for _ in range(n_names):
        (length,) = take("<Q")
        names.append(data[pos : pos + length].decode())
        pos += length
    if len(names) != len(arrays):
        raise ModelArtifactError(f"{source}: {len(arrays)} arrays but {len(names)} names")
    return dict(zip(names, arrays, strict=True))


def _symbol_json(predictor_type: str, feature_dim: int, num_factors: int) -> str:
    """MXNet symbol graph of the FM network: data . w1 + w0 + 1/2 sum((data . v)^2 - data^2 . v^2)."""
    nodes: list[dict] = []

    def node(op: str, name: str, inputs: tuple[int, ...] = (), attrs: dict | None = None) -> int:
        nodes.append(
            {"op": op, "name": name, "inputs": [[i, 0, 0] for i in inputs], **({"attrs": attrs} if attrs else {})}
        )
        return len(nodes) - 1

    # Variables carry their shapes so MXNet can bind the graph from the checkpoint alone.
    data = node("null", "data")
    w1 = node("null", "w1_weight", attrs={"__shape__": f"({feature_dim}, 1)"})
    w0 = node("null", "w0_weight", attrs={"__shape__": "(1,)"})
    v = node("null", "v", attrs={"__shape__": f"({feature_dim}, {num_factors})"})
    linear = node("dot", "dot0", (data, w1))
    linear = node("broadcast_add", "broadcast_plus0", (linear, w0))
    xv = node("dot", "dot1", (data, v))
    xv2 = node("square", "square0", (xv,))
    x2 = node("square", "square1", (data,))
    v2 = node("square", "square2", (v,))
    x2v2 = node("dot", "dot2", (x2, v2))
    diff = node("elemwise_sub", "minus0", (xv2, x2v2))
    pair = node("sum", "sum0", (diff,), {"axis": "1", "keepdims": "True"})
    half = node("_mul_scalar", "mulscalar0", (pair,), {"scalar": "0.5"})
    score = node("elemwise_add", "plus0", (linear, half))
    label = node("null", "out_label")
    out_op = "LogisticRegressionOutput" if predictor_type == "binary_classifier" else "LinearRegressionOutput"
    out = node(out_op, "out", (score, label))
    arg_nodes = [i for i, n in enumerate(nodes) if n["op"] == "null"]
    return json.dumps(
        {
            "nodes": nodes,
            "arg_nodes": arg_nodes,
            "node_row_ptr": list(range(len(nodes) + 1)),
            "heads": [[out, 0, 0]],
            "attrs": {"mxnet_version": ["int", 10901], "fm_predictor_type": ["str", predictor_type]},
        },
        indent=2,
    )


def write_model_tar_gz(model: FMModel) -> bytes:
    """Serialise ``model`` as SageMaker FM's ``model.tar.gz`` (deterministic bytes).

    The parameters are streamed into the zip member, so memory holds them, one
    uncompressed zip and the compressed result; nothing more.
    """
    arrays = {"arg:w0_weight": model.w0.reshape(1), "arg:w1_weight": model.w.reshape(-1, 1), "arg:v": model.v}
    inner = io.BytesIO()
    # Members are stored, not deflated: the outer gzip compresses them once, and loading
    # a large model then decompresses once instead of twice.
    with zipfile.ZipFile(inner, "w", compression=zipfile.ZIP_STORED) as zf:
        symbol = _symbol_json(model.predictor_type, model.feature_dim, model.num_factors).encode()
        zf.writestr(zipfile.ZipInfo("symbol.json", date_time=_ZIP_TIME), symbol)
        with zf.open(zipfile.ZipInfo("params", date_time=_ZIP_TIME), mode="w", force_zip64=True) as member:
            write_ndarray_list(member, arrays)
    outer = io.BytesIO()
    # tarfile's "w:gz" stamps the gzip header with the current time; a GzipFile of our
    # own with mtime 0 keeps equal models byte-identical.
    with (
        gzip.GzipFile(filename="", fileobj=outer, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        info = tarfile.TarInfo(MEMBER)
        info.size, info.mtime, info.mode = inner.getbuffer().nbytes, 0, 0o644
        inner.seek(0)
        tar.addfile(info, inner)
    return outer.getvalue()


def read_model_tar_gz(data: bytes, source: str = "model.tar.gz") -> FMModel:
    """Read an FM ``model.tar.gz`` written by SageMaker or by ``write_model_tar_gz``."""
    try:
        # zlib in one call: several times faster than tarfile's streamed gzip for large models
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tar:
            member = tar.extractfile(MEMBER)
            if member is None:
                raise ModelArtifactError(f"{source}: no {MEMBER} member")
            inner = member.read()
        with zipfile.ZipFile(io.BytesIO(inner)) as zf:
            params = zf.read("params")
            symbol = json.loads(zf.read("symbol.json"))
    except (tarfile.TarError, zipfile.BadZipFile, KeyError, OSError, EOFError) as exc:
        raise ModelArtifactError(f"{source}: not an FM model archive ({exc})") from exc
    arrays = {k.split(":", 1)[-1]: a for k, a in load_ndarray_list(params, f"{source}/{MEMBER}/params").items()}
    try:
        w0, w1, v = arrays["w0_weight"], arrays["w1_weight"], arrays["v"]
    except KeyError as exc:
        raise ModelArtifactError(f"{source}: params lack {exc.args[0]}") from None
    heads = {n.get("op") for n in symbol.get("nodes", [])}
    predictor = "binary_classifier" if "LogisticRegressionOutput" in heads else "regressor"
    return FMModel(w0.reshape(1).copy(), w1.reshape(-1).copy(), np.ascontiguousarray(v), predictor)
