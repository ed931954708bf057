"""Model artifacts checked against files MXNet 1.9.1 itself wrote and read (tests/fixtures/mxnet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from video_recommender.data.recordio import SparseRows
from video_recommender.engine.artifacts import FMModel, load_ndarray_list, save_ndarray_list
from video_recommender.engine.training import score

FIXTURES = Path(__file__).parent / "fixtures" / "mxnet"


def arrays() -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURES / "arrays.npz"))


def test_params_bytes_equal_mx_nd_save() -> None:
    a = arrays()
    ours = save_ndarray_list({"arg:w0_weight": a["w0"], "arg:w1_weight": a["w"].reshape(-1, 1), "arg:v": a["v"]})
    assert ours == (FIXTURES / "params.mxnet").read_bytes()


def test_reads_what_mxnet_wrote() -> None:
    loaded = load_ndarray_list((FIXTURES / "params.mxnet").read_bytes())
    a = arrays()
    np.testing.assert_array_equal(loaded["arg:v"], a["v"])
    np.testing.assert_array_equal(loaded["arg:w1_weight"].ravel(), a["w"])
    np.testing.assert_array_equal(loaded["arg:w0_weight"], a["w0"])


def test_mxnet_module_predicts_what_we_predict() -> None:
    """mxnet_predictions.npy: Module.load of our model.tar.gz (the documented recipe) + forward."""
    a = arrays()
    rows = SparseRows(np.array([0, 2, 4, 6]), np.array([0, 7, 3, 9, 5, 11]), np.ones(6, np.float32), 12)
    ours = score(FMModel(a["w0"], a["w"], a["v"]), rows)
    np.testing.assert_allclose(ours, np.load(FIXTURES / "mxnet_predictions.npy"), rtol=1e-5, atol=1e-5)
