"""Compiled factorization-machine kernels (numba): one training epoch, and prediction.

Model: y_hat = w0 + sum_i w_i x_i + 1/2 sum_f [(sum_i v_if x_i)^2 - sum_i v_if^2 x_i^2].

Optimiser: real SageMaker FM's, read from published job logs (``'_optimizer': 'adam'``,
``Optimizer with lazy_update = True detected.``; shared/reference/fm-real-optimizer.md):
MXNet's Adam with lazy row-sparse updates. Per parameter group (bias, linear, factors),
once per mini-batch, for the rows that occur in the mini-batch only:

    g   = clip(rescale_grad * (gradient summed over the mini-batch) + wd * param, clip_gradient)
    m   = beta1 * m + (1 - beta1) * g
    var = beta2 * var + (1 - beta2) * g^2
    param -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(var) + eps)

with ``t`` the number of updates so far (every mini-batch updates every group once,
so ``t`` is the mini-batch count since the start of training). The global bias is
dense: one update per mini-batch. Records are visited in file order.

Parallelism without races or scheduling effects: within a mini-batch the forward
pass runs across threads, one row per iteration, and keeps each row's error and
factor sums; the backward pass then runs across threads one *distinct feature*
per iteration, summing that feature's occurrences in file order (the grouping is
computed once, as the order never changes) and updating its Adam state. No two
threads write the same memory and no sum depends on the thread count, so a run is
bit-for-bit repeatable.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

# Order of the float64 `optimizer` vector handed to `train_epoch`.
OPTIMIZER = (
    "bias_lr", "linear_lr", "factors_lr", "bias_wd", "linear_wd", "factors_wd",
    "rescale_grad", "clip_gradient", "eps", "beta1", "beta2",
)  # fmt: skip
BETA1, BETA2 = 0.9, 0.999  # MXNet's Adam defaults; FM exposes neither

PREFETCH_AHEAD = 4  # rows / features: far enough for a random row of `v` to arrive from memory in time
# Reassociation lets the sums vectorise and contraction fuses multiply-adds; no
# approximate sqrt or reciprocal (float32 throughout, as MXNet's kernel).
FAST = {"reassoc", "contract", "nsz"}


def _prefetch_codegen(context, builder, signature, args):
    """LLVM's prefetch of the element ``args[0][args[1:]]``: a hint, with no effect on results."""
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


@intrinsic
def _prefetch(typingctx, arr, i, j):  # pragma: no cover - compiled
    """Hint the CPU to load ``arr[i, j]`` into cache."""
    return types.void(arr, i, j), _prefetch_codegen


@numba.njit(cache=True, error_model="numpy", inline="always")
def _prefetch_row(table, i, width):  # pragma: no cover - compiled
    """Prefetch ``table[i, :width]``: memory latency, not arithmetic, bounds these kernels
    (without the hints an epoch ran 2x slower)."""
    for f in range(0, width, 16):  # one hint per 64-byte cache line
        _prefetch(table, i, f)


@numba.njit(cache=True, error_model="numpy", fastmath=FAST)
def _forward(indptr, indices, values, w0, w, v, k, r, sums, j):  # pragma: no cover - compiled
    """FM output of row ``r`` (factors ``v[i, :k]``); leaves sum_i v_if x_i in ``sums[j]``
    (the factor gradient needs it).

    Rows of 2-D arrays are indexed, never sliced: a slice in a parallel loop is a new
    array whose reference count every thread updates atomically on one cache line.
    """
    pred = w0[0]
    for f in range(k):
        sums[j, f] = 0.0
    sq = np.float32(0.0)
    for p in range(indptr[r], indptr[r + 1]):
        i = indices[p]
        x = values[p]
        pred += w[i] * x
        for f in range(k):
            a = v[i, f] * x
            sums[j, f] += a
            sq += a * a
    inter = np.float32(0.0)
    for f in range(k):
        inter += sums[j, f] * sums[j, f]
    return pred + np.float32(0.5) * (inter - sq)


@numba.njit(cache=True, error_model="numpy", fastmath=FAST, inline="always")
def _sigmoid(z):  # pragma: no cover - compiled
    z = min(max(z, np.float32(-35.0)), np.float32(35.0))
    return np.float32(1.0) / (np.float32(1.0) + np.float32(math.exp(-z)))


@numba.njit(cache=True, error_model="numpy", inline="always")
def _adam(g, param, m, var, lr_t, wd, clip, eps, b1, b2):  # pragma: no cover - compiled
    """One Adam step of one value; returns (param, m, var). ``clip`` < 0: no clipping."""
    g = g + wd * param
    if clip >= 0:
        g = min(max(g, -clip), clip)
    m = b1 * m + (np.float32(1.0) - b1) * g
    var = b2 * var + (np.float32(1.0) - b2) * g * g
    return param - lr_t * m / (np.sqrt(var) + eps), m, var


@numba.njit(cache=True, error_model="numpy", fastmath=FAST)
def _update_feature(
    table, i, k, occ_row, occ_pos, first, end, r0, values, grads, sums, g_v, u,
    lr_w, lr_v, wd_w, wd_v, clip, eps, b1, b2,
):  # pragma: no cover - compiled  # fmt: skip
    """Feature ``i``'s gradient, summed over its occurrences ``first:end`` in file order,
    then one Adam step of its linear weight and factors.

    A function of its own, not inlined: compiled apart from the parallel loop that
    calls it, its loops vectorise (inlined, they did not: 5x slower).
    """
    m_at, var_at = k + 1, 2 * (k + 1)
    g_w = np.float32(0.0)
    for q in range(first, end):
        j = occ_row[q] - r0
        x = values[occ_pos[q]]
        g = grads[j] * x
        g_w += g
        if q == first:
            for f in range(k):
                g_v[u, f] = g * (sums[j, f] - table[i, f] * x)
        else:
            for f in range(k):
                g_v[u, f] += g * (sums[j, f] - table[i, f] * x)
    table[i, k], table[i, m_at + k], table[i, var_at + k] = _adam(
        g_w, table[i, k], table[i, m_at + k], table[i, var_at + k], lr_w, wd_w, clip, eps, b1, b2
    )
    for f in range(k):
        table[i, f], table[i, m_at + f], table[i, var_at + f] = _adam(
            g_v[u, f], table[i, f], table[i, m_at + f], table[i, var_at + f], lr_v, wd_v, clip, eps, b1, b2
        )


@numba.njit(parallel=True, cache=True, error_model="numpy", nogil=True)
def group_features(indptr, indices, batch_bounds):  # pragma: no cover - compiled
    """Per mini-batch, its distinct features and where each occurs (computed once per training).

    Mini-batch ``b`` owns the slots ``indptr[bounds[b]]:indptr[bounds[b+1]]`` of every
    returned array: ``occ_row``/``occ_pos`` list its nonzeros sorted by feature (stably,
    so file order within a feature), ``features[start + u]`` is its ``u``-th distinct
    feature, whose occurrences end at slot ``group_end[start + u]``; ``n_features[b]``
    counts them.
    """
    n_batches = len(batch_bounds) - 1
    nnz = indptr[-1]
    # int32 throughout (half the memory of int64): the caller keeps nnz below 2**31.
    occ_row = np.empty(nnz, dtype=np.int32)
    occ_pos = np.empty(nnz, dtype=np.int32)
    features = np.empty(nnz, dtype=np.int32)
    group_end = np.empty(nnz, dtype=np.int32)
    n_features = np.zeros(n_batches, dtype=np.int64)
    for b in prange(n_batches):
        r0, r1 = batch_bounds[b], batch_bounds[b + 1]
        p0, p1 = indptr[r0], indptr[r1]
        rows = np.empty(p1 - p0, dtype=np.int64)
        for r in range(r0, r1):
            for p in range(indptr[r], indptr[r + 1]):
                rows[p - p0] = r
        order = np.argsort(indices[p0:p1], kind="mergesort")
        u = -1
        last = -1
        for j in range(p1 - p0):
            p = p0 + order[j]
            occ_row[p0 + j] = rows[order[j]]
            occ_pos[p0 + j] = p
            feature = indices[p]
            if feature != last:
                u += 1
                features[p0 + u] = feature
                last = feature
            group_end[p0 + u] = p0 + j + 1
        n_features[b] = u + 1
    return occ_row, occ_pos, features, group_end, n_features


def parameter_table(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The training layout: one row per feature holding its factors, linear weight and both
    Adam moments, ``[v (k), w, m_v (k), m_w, var_v (k), var_w]``.

    A feature's whole state in one stretch of memory costs one TLB entry and a run of
    adjacent cache lines instead of four scattered arrays; on this VM that alone made
    an epoch about twice as fast.
    """
    d, k = v.shape
    table = np.zeros((d, 3 * (k + 1)), dtype=np.float32)
    table[:, :k] = v
    table[:, k] = w
    return table


@numba.njit(parallel=True, cache=True, error_model="numpy", nogil=True)
def train_epoch(
    indptr, indices, values, labels, batch_bounds, grouping, w0, state_bias, table, k,
    optimizer, t_start, classifier, predictions,
):  # pragma: no cover - compiled  # fmt: skip
    """One pass over the mini-batches in file order; writes each row's prediction (made
    before its mini-batch's update) into ``predictions`` and returns the update count.

    ``table`` is ``parameter_table``'s layout; ``state_bias`` holds the global bias's Adam
    moments. ``t_start`` is the number of updates made before this epoch.
    """
    occ_row, occ_pos, features, group_end, n_features = grouping
    n_batches = len(batch_bounds) - 1
    width = k + 1
    w = table[:, k]  # a strided view, made once: linear weights inside the table
    f32 = np.float32
    lr_b, lr_w, lr_v = optimizer[0], optimizer[1], optimizer[2]
    wd_b, wd_w, wd_v = f32(optimizer[3]), f32(optimizer[4]), f32(optimizer[5])
    rescale, clip, eps = f32(optimizer[6]), f32(optimizer[7]), f32(optimizer[8])
    b1, b2 = optimizer[9], optimizer[10]
    b1_32, b2_32 = f32(b1), f32(b2)
    widest = 0
    most = 0
    for b in range(n_batches):
        widest = max(widest, batch_bounds[b + 1] - batch_bounds[b])
        most = max(most, n_features[b])
    sums = np.empty((widest, k), dtype=np.float32)  # per row: sum_i v_if x_i
    grads = np.empty(widest, dtype=np.float32)  # per row: rescale_grad * dloss/dy_hat
    g_v = np.empty((max(most, 1), k), dtype=np.float32)  # per distinct feature: its factor gradient
    t = t_start
    for b in range(n_batches):
        r0, r1 = batch_bounds[b], batch_bounds[b + 1]
        for j in prange(r1 - r0):
            r = r0 + j
            if j + PREFETCH_AHEAD < r1 - r0:
                for p in range(indptr[r + PREFETCH_AHEAD], indptr[r + PREFETCH_AHEAD + 1]):
                    _prefetch_row(table, indices[p], width)
            pred = _forward(indptr, indices, values, w0, w, table, k, r, sums, j)
            predictions[r] = pred
            grads[j] = rescale * ((_sigmoid(pred) if classifier else pred) - labels[r])
        t += 1
        correction = math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        g_bias = f32(0.0)
        for j in range(r1 - r0):  # in row order: the same sum whatever the threads
            g_bias += grads[j]
        w0[0], state_bias[0], state_bias[1] = _adam(
            g_bias, w0[0], state_bias[0], state_bias[1], f32(lr_b * correction), wd_b, clip, eps, b1_32, b2_32
        )
        lr_tw, lr_tv = f32(lr_w * correction), f32(lr_v * correction)
        start = indptr[r0]
        for u in prange(n_features[b]):
            slot = start + u
            if u + PREFETCH_AHEAD < n_features[b]:
                _prefetch_row(table, features[slot + PREFETCH_AHEAD], 3 * width)
            first = start if u == 0 else group_end[slot - 1]
            _update_feature(
                table, features[slot], k, occ_row, occ_pos, first, group_end[slot], r0, values, grads, sums,
                g_v, u, lr_tw, lr_tv, wd_w, wd_v, clip, eps, b1_32, b2_32,
            )  # fmt: skip
    return t


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath=FAST, nogil=True)
def predict(indptr, indices, values, w0, w, v, classifier):  # pragma: no cover - compiled
    """Raw FM output per row, passed through a sigmoid for the classifier."""
    n = len(indptr) - 1
    k = v.shape[1]
    out = np.empty(n, dtype=np.float32)
    for r in prange(n):
        if r + PREFETCH_AHEAD < n:
            for p in range(indptr[r + PREFETCH_AHEAD], indptr[r + PREFETCH_AHEAD + 1]):
                _prefetch_row(v, indices[p], k)
        pred = _forward(indptr, indices, values, w0, w, v, k, r, np.empty((1, k), dtype=np.float32), 0)
        out[r] = _sigmoid(pred) if classifier else pred
    return out
