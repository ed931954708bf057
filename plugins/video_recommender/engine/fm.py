"""Compiled factorization-machine kernels (numba): one training epoch and prediction.

Model: y_hat = w0 + sum_i w_i x_i + 1/2 sum_f [(sum_i v_if x_i)^2 - sum_i v_if^2 x_i^2].

Optimiser (SageMaker leaves it undocumented; this is our decision): plain SGD
with MXNet's update rule, per parameter group (bias, linear, factors):
    g = clip(rescale_grad * dloss/dparam, -clip_gradient, clip_gradient)
    param -= lr * (g + wd * param)
``rescale_grad`` defaults to ``1/mini_batch_size``, as MXNet modules set it, so
the learning rates are per mini-batch: doubling ``mini_batch_size`` halves each
sample's step. The global bias w0, which every sample touches, takes one update
per mini-batch from the batch's summed gradient, exactly as MXNet updates a
parameter. Linear and factor rows are updated after each sample, lock-free across
threads (Hogwild!), and only the rows a sample touches (lazy weight decay, as
MXNet's sparse SGD); for one-hot data a row rarely occurs twice in a mini-batch,
and then this equals MXNet's batch update. ``eps`` belongs to adaptive optimisers
(AdaGrad, Adam): it is validated and has no effect here. We measured AdaGrad too:
on the demo data it reached a validation RMSE about 15% worse than SGD.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

# Order of the float32 `rates` vector handed to `train_epoch`.
RATES = ("bias_lr", "linear_lr", "factors_lr", "bias_wd", "linear_wd", "factors_wd", "rescale_grad", "clip_gradient")


PREFETCH_AHEAD = 4  # samples: far enough for a random row of `v` to arrive from memory in time


@intrinsic
def _prefetch(typingctx, arr, i, j):  # pragma: no cover - compiled
    """Hint the CPU to load ``arr[i, j]`` into cache (LLVM's prefetch; no effect on results)."""

    def codegen(context, builder, signature, args):
        arr_type = signature.args[0]
        array = context.make_array(arr_type)(context, builder, args[0])
        index = [context.cast(builder, a, t, types.intp) for a, t in zip(args[1:], signature.args[1:], strict=True)]
        ptr = cgutils.get_item_pointer(context, builder, arr_type, array, index, wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        # write intent (1), high locality (3), data cache (1)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, i, j), codegen


@numba.njit(cache=True, inline="always")
def _prefetch_rows(indptr, indices, v, r):  # pragma: no cover - compiled
    k = v.shape[1]
    for p in range(indptr[r], indptr[r + 1]):
        i = indices[p]
        for f in range(0, k, 16):  # one hint per 64-byte cache line
            _prefetch(v, i, f)


@numba.njit(cache=True, fastmath=True, inline="always")
def _forward(indptr, indices, values, w0, w, v, r, s):  # pragma: no cover - compiled
    """FM output of row ``r``; leaves sum_i v_if x_i in ``s`` (the factor gradient needs it)."""
    k = v.shape[1]
    pred = w0[0]
    s[:] = 0.0
    sq = np.float32(0.0)
    for p in range(indptr[r], indptr[r + 1]):
        i = indices[p]
        x = values[p]
        pred += w[i] * x
        for f in range(k):
            a = v[i, f] * x
            s[f] += a
            sq += a * a
    inter = np.float32(0.0)
    for f in range(k):
        inter += s[f] * s[f]
    return pred + np.float32(0.5) * (inter - sq)


@numba.njit(cache=True, fastmath=True, inline="always")
def _sigmoid(z):  # pragma: no cover - compiled
    z = min(max(z, np.float32(-35.0)), np.float32(35.0))
    return np.float32(1.0) / (np.float32(1.0) + np.float32(math.exp(-z)))


@numba.njit(cache=True, fastmath=True, inline="always")
def _clip(g, c):  # pragma: no cover - compiled
    return min(max(g, -c), c)


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def train_epoch(
    indptr, indices, values, labels, batch_bounds, batch_order, w0, w, v, rates, classifier
):  # pragma: no cover
    """One pass over the mini-batches (rows ``batch_bounds[b]:batch_bounds[b+1]``) in the order
    ``batch_order``; returns the summed loss. Rows are stored shuffled (``shuffle_rows``), so a
    mini-batch reads contiguous memory.

    All arithmetic is float32 so the factor loops vectorise. ``rates`` holds the
    learning rates, weight decays, rescale_grad and clip_gradient (0 = no clipping).
    """
    n_batches = len(batch_bounds) - 1
    k = v.shape[1]
    lr_b, lr_w, lr_v = rates[0], rates[1], rates[2]
    wd_b, wd_w, wd_v = rates[3], rates[4], rates[5]
    rescale, clip = rates[6], rates[7]
    losses = np.zeros(n_batches)
    for j in prange(n_batches):
        b = batch_order[j]
        s = np.empty(k, dtype=np.float32)
        loss = 0.0
        g_bias = np.float32(0.0)
        end = batch_bounds[b + 1]
        for r in range(batch_bounds[b], end):
            if r + PREFETCH_AHEAD < end:
                _prefetch_rows(indptr, indices, v, r + PREFETCH_AHEAD)
            lo, hi = indptr[r], indptr[r + 1]
            pred = _forward(indptr, indices, values, w0, w, v, r, s)
            y = labels[r]
            if classifier:
                prob = _sigmoid(pred)
                g = prob - y
                loss -= y * math.log(max(prob, 1e-12)) + (1.0 - y) * math.log(max(1.0 - prob, 1e-12))
            else:
                g = pred - y
                loss += g * g
            g *= rescale
            g_bias += g
            for p in range(lo, hi):
                i = indices[p]
                x = values[p]
                gx = g * x
                if clip > 0:
                    w[i] -= lr_w * (_clip(gx, clip) + wd_w * w[i])
                    for f in range(k):
                        vf = v[i, f]
                        v[i, f] = vf - lr_v * (_clip(gx * (s[f] - vf * x), clip) + wd_v * vf)
                else:
                    w[i] -= lr_w * (gx + wd_w * w[i])
                    for f in range(k):
                        vf = v[i, f]
                        v[i, f] = vf - lr_v * (gx * (s[f] - vf * x) + wd_v * vf)
        # The global bias is touched by every sample: one update per mini-batch (as MXNet
        # does for every parameter) keeps threads from fighting over its cache line.
        if clip > 0:
            g_bias = _clip(g_bias, clip)
        w0[0] -= lr_b * (g_bias + wd_b * w0[0])
        losses[b] = loss
    return losses.sum()


@numba.njit(parallel=True, cache=True, nogil=True)
def shuffle_rows(indptr, indices, values, labels, order):  # pragma: no cover - compiled
    """Copy CSR rows (and labels) into the order ``order``, so an epoch reads memory sequentially."""
    n = len(order)
    new_indptr = np.empty(n + 1, dtype=indptr.dtype)
    new_indptr[0] = 0
    for t in range(n):
        r = order[t]
        new_indptr[t + 1] = new_indptr[t] + indptr[r + 1] - indptr[r]
    new_indices = np.empty_like(indices)
    new_values = np.empty_like(values)
    new_labels = np.empty_like(labels)
    for t in prange(n):
        r = order[t]
        lo = indptr[r]
        dst = new_indptr[t]
        for j in range(indptr[r + 1] - lo):
            new_indices[dst + j] = indices[lo + j]
            new_values[dst + j] = values[lo + j]
        new_labels[t] = labels[r]
    return new_indptr, new_indices, new_values, new_labels


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def predict(indptr, indices, values, w0, w, v, classifier):  # pragma: no cover - compiled
    """Raw FM output per row, passed through a sigmoid for the classifier."""
    n = len(indptr) - 1
    k = v.shape[1]
    out = np.empty(n, dtype=np.float32)
    for r in prange(n):
        if r + PREFETCH_AHEAD < n:
            _prefetch_rows(indptr, indices, v, r + PREFETCH_AHEAD)
        pred = _forward(indptr, indices, values, w0, w, v, r, np.empty(k, dtype=np.float32))
        out[r] = _sigmoid(pred) if classifier else pred
    return out
