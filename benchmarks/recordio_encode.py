"""RecordIO-protobuf encoding speed: our vectorised encoder vs SageMaker SDK v2's per-row writer.

``sdk_v2_writer`` takes the steps of SDK v2's ``sagemaker.amazon.common.
write_spmatrix_to_sparse_tensor`` (2.257.7), one by one, so the comparison needs no
SDK: ``tocsr()``, then per row ``getrow`` (a new 1-row CSR matrix), one reused
``aialgs.data.Record`` cleared and filled by ``extend`` from the row's numpy arrays
(keys cast to uint64), ``SerializeToString`` and four ``write`` calls (magic, length,
payload, padding). Where the real SDK is importable (a throwaway venv, never the
project's), it is timed too and must write the same bytes: that calibrates the
re-implementation against the real thing.

    .venv/bin/pip install scipy==1.18.0          # MWAA's constraints pin; benchmark only
    .venv/bin/python benchmarks/recordio_encode.py [--rows 200000]
    # with the real SDK: python3.12 -m venv /tmp/sdkv2 && /tmp/sdkv2/bin/pip install
    #   sagemaker==2.257.7 scipy==1.18.0 pandas==3.0.5 numpy==2.5.1 pyarrow==25.0.0
    SAGEMAKER_SUPPRESS_V2_WARNING=1 /tmp/sdkv2/bin/python benchmarks/recordio_encode.py
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import time
from pathlib import Path
from typing import BinaryIO

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

from video_recommender.data.recordio import MAGIC, SparseRows, encode_sparse, record_message_class

_PADDING = [b"\x00" * n for n in range(4)]


def sdk_v2_writer(file: BinaryIO, matrix, labels: np.ndarray) -> None:
    """SDK v2's per-row steps (float32 features and labels, as the sample writes them)."""
    record_class = record_message_class()
    csr = matrix.tocsr()
    n_rows, n_cols = csr.shape
    record = record_class()
    for i in range(n_rows):
        record.Clear()
        row = csr.getrow(i)
        record.features["values"].float32_tensor.values.extend(row.data)
        record.features["values"].float32_tensor.keys.extend(row.indices.astype(np.uint64))
        record.label["values"].float32_tensor.values.extend([labels[i]])
        record.features["values"].float32_tensor.shape.extend([n_cols])
        payload = record.SerializeToString()
        file.write(struct.pack("I", MAGIC))
        file.write(struct.pack("I", len(payload)))
        file.write(payload)
        file.write(_PADDING[(((len(payload) + 3) >> 2) << 2) - len(payload)])


def real_sdk_writer():
    """The SDK's own function, when this interpreter has it; else None."""
    try:
        from sagemaker.amazon.common import write_spmatrix_to_sparse_tensor
    except ImportError:
        return None
    return write_spmatrix_to_sparse_tensor


def main() -> None:
    import scipy.sparse as sp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, customers, videos = args.rows, 140_000, 40_000
    cols = np.stack([rng.integers(0, customers, n), customers + rng.integers(0, videos, n)], 1).ravel()
    indptr = np.arange(0, 2 * n + 1, 2)
    values = np.ones(2 * n, np.float32)
    csr = sp.csr_matrix((values, cols, indptr), shape=(n, customers + videos))
    labels = rng.integers(1, 6, n).astype(np.float32)

    def to_bytes(writer):
        def run():
            buf = io.BytesIO()
            writer(buf, csr, labels)
            return buf.getvalue()

        return run

    encoders = {
        "vectorised (ours)": lambda: encode_sparse(SparseRows(indptr, cols, values, customers + videos), labels),
        "SDK v2 steps, re-implemented": to_bytes(sdk_v2_writer),
    }
    real = real_sdk_writer()
    if real is not None:
        encoders["SDK v2 itself (sagemaker.amazon.common)"] = to_bytes(real)
    timings = {}
    for name, fn in encoders.items():
        start = time.perf_counter()
        data = fn()
        timings[name] = (time.perf_counter() - start, data)
    ours = timings["vectorised (ours)"][1]
    for name, (_, data) in timings.items():
        assert data == ours, f"{name} wrote different bytes"
    print(
        f"{n} one-hot rows, feature_dim {customers + videos}, {len(ours) / 1e6:.1f} MB, "
        f"identical bytes from all {len(timings)} writers" + ("" if real else " (the real SDK is not importable here)")
    )
    print(f"{'encoder':<42}{'seconds':>10}{'rows/s':>14}")
    for name, (seconds, _) in timings.items():
        print(f"{name:<42}{seconds:>10.3f}{n / seconds:>14,.0f}")
    t_ours = timings["vectorised (ours)"][0]
    for name, (seconds, _) in list(timings.items())[1:]:
        print(f"speed-up over {name}: {seconds / t_ours:.1f}x")


if __name__ == "__main__":
    main()
