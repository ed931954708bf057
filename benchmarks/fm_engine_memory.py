"""Peak memory of a local training job at full scale, against its parameters and data.

Writes 1 M one-hot training rows (179 k features) as RecordIO, then runs the
CreateTrainingJob in a fresh process and prints its peak RSS above the RSS it had
after imports, next to the size of the model parameters and of one in-memory copy
of the data (CSR with int32 keys, float32 values and labels).

    .venv/bin/python benchmarks/fm_engine_memory.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO / "benchmarks"))

from fm_engine_speed import one_hot_data  # ruff: ignore[module-import-not-at-top-of-file]

from video_recommender.data.recordio import encode_sparse  # ruff: ignore[module-import-not-at-top-of-file]

# VmHWM (peak resident set) starts afresh at exec, unlike ru_maxrss, which a child
# inherits from the parent's peak.
CHILD = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from video_recommender.engine import fm, training  # imports first

def hwm_kib():
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1])

request = json.loads(Path(sys.argv[1]).read_text())
hp = training.parse_hyperparameters(request["HyperParameters"])
# Load the compiled kernels first, so the measurement shows data and parameters only.
tiny = request["InputDataConfig"][0] | {"DataSource": {"S3DataSource": {"S3Uri": sys.argv[3]}}}
training.train_model(*training.read_channel(tiny, Path), hp | {"epochs": 1, "feature_dim": 10}, emit=lambda _: None)
base = hwm_kib()
model, _ = training.train_model(*training.read_channel(request["InputDataConfig"][0], Path), hp, emit=lambda _: None)
trained = hwm_kib()
Path(sys.argv[1]).with_name("model.tar.gz").write_bytes(training.write_model_tar_gz(model))
print(base, trained, hwm_kib())
"""


def main() -> None:
    import json

    n, customers, videos, k = 1_000_000, 140_000, 39_000, 64
    rows, y = one_hot_data(n, customers, videos)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "train").mkdir()
        (base / "train" / "train.protobuf").write_bytes(encode_sparse(rows, y))
        (base / "tiny").mkdir()
        tiny_rows, tiny_y = one_hot_data(1000, 5, 5)
        (base / "tiny" / "tiny.protobuf").write_bytes(encode_sparse(tiny_rows, tiny_y))
        request = {
            "TrainingJobName": "memory",
            "HyperParameters": {
                "feature_dim": str(rows.n_cols),
                "num_factors": str(k),
                "predictor_type": "regressor",
                "epochs": "2",
            },
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{base / 'train'}/"}},
                }
            ],
            "OutputDataConfig": {"S3OutputPath": str(base / "out")},
        }
        (base / "request.json").write_text(json.dumps(request))
        file_mb = (base / "train" / "train.protobuf").stat().st_size / 2**20
        done = subprocess.run([sys.executable, "-c", CHILD, str(base / "request.json"), str(REPO / "plugins"), str(base / "tiny")],
                              capture_output=True, text=True, check=True)  # fmt: skip
    before, trained, peak = (int(x) / 1024 for x in done.stdout.split())
    params = rows.n_cols * (k + 1) * 4 / 2**20
    data = (len(rows.indices) * 8 + (n + 1) * 8 + n * 4) / 2**20
    print(f"{n} rows, feature_dim {rows.n_cols}, num_factors {k}; RecordIO file {file_mb:.0f} MiB")
    print(f"parameters {params:.0f} MiB + one copy of the data {data:.0f} MiB = {params + data:.0f} MiB")
    print(f"peak RSS above the process's start ({before:.0f} MiB, imports and compiled kernels loaded): "
          f"reading and training {trained - before:.0f} MiB, then writing model.tar.gz {peak - before:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
