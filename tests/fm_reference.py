"""Real FM's training rules, written out plainly in float64 numpy: the oracle for the engine.

Taken line by line from shared/reference/fm-real-optimizer.md section 1 (MXNet's Adam,
lazy row-sparse updates, once per mini-batch, gradients summed over the mini-batch,
``t`` = updates so far, dense global bias, file order), with none of the engine's code:
no kernels, no grouping, no parameter table. Slow; for a few hundred rows.
"""

from __future__ import annotations

import math

import numpy as np

from video_recommender.data.recordio import SparseRows


def _adam(param, grad, m, var, lr, wd, t, rescale, clip, eps, b1=0.9, b2=0.999):
    g = rescale * grad + wd * param
    if clip is not None:
        g = np.clip(g, -clip, clip)
    m[...] = b1 * m + (1 - b1) * g
    var[...] = b2 * var + (1 - b2) * g * g
    lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
    param -= lr_t * m / (np.sqrt(var) + eps)


def train_reference(
    rows: SparseRows, y: np.ndarray, hp: dict, w0: np.ndarray, w: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Train from the given initial parameters; returns them trained and each epoch's predictions."""
    w0, w, v = (np.array(a, dtype=np.float64) for a in (w0, w, v))
    state = {name: (np.zeros_like(p), np.zeros_like(p)) for name, p in (("b", w0), ("w", w), ("v", v))}
    batch = hp["mini_batch_size"]
    rescale = hp["rescale_grad"] if hp["rescale_grad"] is not None else 1.0 / batch
    clip, eps = hp["clip_gradient"], hp["eps"] if hp["eps"] is not None else 1e-8
    classifier = hp["predictor_type"] == "binary_classifier"
    t = 0
    epochs_predictions = []
    for _ in range(hp["epochs"]):
        predictions = np.empty(rows.n_rows)
        for start in range(0, rows.n_rows, batch):
            members = range(start, min(start + batch, rows.n_rows))
            grad_b = np.zeros(1)
            grad_w: dict[int, float] = {}
            grad_v: dict[int, np.ndarray] = {}
            for r in members:  # every prediction of the mini-batch uses the parameters before its update
                cols = rows.indices[rows.indptr[r] : rows.indptr[r + 1]]
                x = rows.values[rows.indptr[r] : rows.indptr[r + 1]].astype(np.float64)
                s = (v[cols] * x[:, None]).sum(axis=0)
                pred = w0[0] + (w[cols] * x).sum() + 0.5 * ((s**2).sum() - ((v[cols] * x[:, None]) ** 2).sum())
                predictions[r] = pred
                dloss = (1 / (1 + math.exp(-pred)) if classifier else pred) - y[r]
                grad_b += dloss
                for i, xi in zip(cols, x, strict=True):
                    grad_w[i] = grad_w.get(i, 0.0) + dloss * xi
                    grad_v[i] = grad_v.get(i, 0.0) + dloss * xi * (s - v[i] * xi)
            t += 1
            args = {"t": t, "rescale": rescale, "clip": clip, "eps": eps}
            _adam(w0, grad_b, *state["b"], hp["bias_lr"], hp["bias_wd"], **args)
            touched = np.array(sorted(grad_w))  # lazy: only the rows in this mini-batch
            for name, param, grads, lr, wd in (
                ("w", w, np.array([grad_w[i] for i in touched]), hp["linear_lr"], hp["linear_wd"]),
                ("v", v, np.array([grad_v[i] for i in touched]), hp["factors_lr"], hp["factors_wd"]),
            ):
                m, var = (a[touched] for a in state[name])
                part = param[touched]
                _adam(part, grads, m, var, lr, wd, **args)
                param[touched], state[name][0][touched], state[name][1][touched] = part, m, var
        epochs_predictions.append(predictions)
    return w0, w, v, epochs_predictions
