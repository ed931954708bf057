"""RecordIO-protobuf encoding speed: our vectorised encoder vs per-row protobuf objects.

The per-row variant builds one ``aialgs.data.Record`` message per row with the
``protobuf`` library and serialises it, which is what SageMaker SDK v2's
``write_spmatrix_to_sparse_tensor`` does; both produce the same bytes (checked here).

    .venv/bin/python benchmarks/recordio_encode.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

from video_recommender.data.recordio import MAGIC, SparseRows, encode_sparse, record_message_class


def per_row_protobuf(rows: SparseRows, labels: np.ndarray) -> bytes:
    record_class = record_message_class()
    out = bytearray()
    for i in range(rows.n_rows):
        lo, hi = rows.indptr[i], rows.indptr[i + 1]
        record = record_class()
        tensor = record.features["values"].float32_tensor
        tensor.values.extend(rows.values[lo:hi].tolist())
        tensor.keys.extend(rows.indices[lo:hi].tolist())
        tensor.shape.append(rows.n_cols)
        record.label["values"].float32_tensor.values.append(float(labels[i]))
        payload = record.SerializeToString(deterministic=True)
        out += struct.pack("<II", MAGIC, len(payload)) + payload + b"\x00" * (-len(payload) % 4)
    return bytes(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, customers, videos = args.rows, 140_000, 40_000
    cols = np.stack([rng.integers(0, customers, n), customers + rng.integers(0, videos, n)], 1).ravel()
    rows = SparseRows(np.arange(0, 2 * n + 1, 2), cols, np.ones(2 * n, np.float32), customers + videos)
    labels = rng.integers(1, 6, n).astype(np.float32)

    timings = {}
    for name, fn in (("vectorised (ours)", encode_sparse), ("per-row protobuf (SDK v2 style)", per_row_protobuf)):
        start = time.perf_counter()
        data = fn(rows, labels)
        timings[name] = (time.perf_counter() - start, data)
    (t_ours, ours), (t_ref, ref) = timings.values()
    assert ours == ref, "encoders disagree"
    print(
        f"{n} one-hot rows, feature_dim {customers + videos}, {len(ours) / 1e6:.1f} MB, identical bytes: {ours == ref}"
    )
    print(f"{'encoder':<34}{'seconds':>10}{'rows/s':>14}")
    for name, (seconds, _) in timings.items():
        print(f"{name:<34}{seconds:>10.3f}{n / seconds:>14,.0f}")
    print(f"speed-up: {t_ref / t_ours:.1f}x")


if __name__ == "__main__":
    main()
