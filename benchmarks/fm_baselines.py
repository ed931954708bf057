"""Reference FMs for compare_fm.py, run inside .venv-bench (PyTorch and myfm).

Reads the one-hot splits from an .npz written by compare_fm.py and prints one JSON
line per model: samples/s of training and test RMSE. Not imported by the project.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import scipy.sparse as sp


def one_hot(split: dict, n_customers: int, dim: int) -> sp.csr_matrix:
    n = len(split["customer"])
    cols = np.stack([split["customer"], n_customers + split["video"]], 1).ravel()
    return sp.csr_matrix((np.ones(2 * n, np.float32), cols, np.arange(0, 2 * n + 1, 2)), shape=(n, dim))


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def run_myfm(data: dict, rank: int = 8, n_iter: int = 200) -> dict:
    import myfm

    x_train, x_test = data["x_train"], data["x_test"]
    model = myfm.MyFMRegressor(rank=rank, random_seed=42)
    start = time.perf_counter()
    model.fit(x_train, data["y_train"], n_iter=n_iter, n_kept_samples=n_iter - 20)
    seconds = time.perf_counter() - start
    return {
        "model": f"myfm Bayesian FM (MCMC, rank {rank}, {n_iter} samples)",
        "samples_per_second": x_train.shape[0] * n_iter / seconds,
        "train_seconds": seconds,
        "test_rmse": rmse(model.predict(x_test), data["y_test"]),
    }


def run_torch(data: dict, rank: int = 64, epochs: int = 20, batch: int = 512) -> dict:
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    dim, n_customers = data["dim"], data["n_customers"]

    def pairs(split: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([data[f"c_{split}"], n_customers + data[f"v_{split}"]], 1).astype(np.int64))

    idx = {s: pairs(s) for s in ("train", "validate", "test")}
    y = {s: torch.from_numpy(data[f"y_{s}"].astype(np.float32)) for s in ("train", "validate", "test")}
    linear = torch.nn.Embedding(dim, 1, sparse=True)
    factors = torch.nn.Embedding(dim, rank, sparse=True)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.normal_(factors.weight, std=0.01)
    bias = torch.nn.Parameter(torch.tensor([float(y["train"].mean())]))
    sparse_opt = torch.optim.SparseAdam(list(linear.parameters()) + list(factors.parameters()), lr=0.002)
    dense_opt = torch.optim.Adam([bias], lr=0.002)

    def predict(i: torch.Tensor) -> torch.Tensor:
        v = factors(i)
        return bias + linear(i).sum((1, 2)) + 0.5 * (v.sum(1).pow(2) - v.pow(2).sum(1)).sum(1)

    best = (float("inf"), None)
    n = len(y["train"])
    seconds = 0.0
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n)
        for lo in range(0, n, batch):
            b = order[lo : lo + batch]
            i = idx["train"][b]
            loss = torch.nn.functional.mse_loss(predict(i), y["train"][b])
            loss = loss + 1e-4 * factors(i).pow(2).sum() / len(b)  # L2 on the rows in the batch
            sparse_opt.zero_grad()
            dense_opt.zero_grad()
            loss.backward()
            sparse_opt.step()
            dense_opt.step()
        seconds += time.perf_counter() - start
        with torch.no_grad():
            val = rmse(predict(idx["validate"]).numpy(), y["validate"].numpy())
            if val < best[0]:
                best = (val, rmse(predict(idx["test"]).numpy(), y["test"].numpy()))
    return {
        "model": f"PyTorch sparse-embedding FM (SparseAdam, rank {rank}, best of {epochs} epochs on validation)",
        "samples_per_second": n * epochs / seconds,
        "train_seconds": seconds,
        "test_rmse": best[1],
    }


def main() -> None:
    raw = dict(np.load(sys.argv[1]))
    n_customers, dim = int(raw["n_customers"]), int(raw["dim"])
    data = {**raw, "n_customers": n_customers, "dim": dim}
    for split in ("train", "test"):
        data[f"x_{split}"] = one_hot({"customer": raw[f"c_{split}"], "video": raw[f"v_{split}"]}, n_customers, dim)
    wanted = sys.argv[2].split(",") if len(sys.argv) > 2 else ["torch", "myfm"]
    for name in wanted:
        print(json.dumps({"torch": run_torch, "myfm": run_myfm}[name](data)), flush=True)


if __name__ == "__main__":
    main()
