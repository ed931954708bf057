"""FM hyper-parameters: string values, SageMaker defaults, validation messages."""

from __future__ import annotations

import pytest

from video_recommender.engine.hyperparameters import SPECS, HyperParameterError, parse_hyperparameters

REQUIRED = {"feature_dim": "100", "num_factors": "8", "predictor_type": "regressor"}


def test_defaults_are_sagemakers() -> None:
    hp = parse_hyperparameters(REQUIRED)
    assert (hp["epochs"], hp["mini_batch_size"]) == (1, 1000)
    assert (hp["bias_lr"], hp["linear_lr"], hp["factors_lr"]) == (0.1, 0.001, 0.0001)
    assert (hp["bias_wd"], hp["linear_wd"], hp["factors_wd"]) == (0.01, 0.001, 0.00001)
    assert (hp["bias_init_sigma"], hp["linear_init_sigma"], hp["factors_init_sigma"]) == (0.01, 0.01, 0.001)
    assert hp["factors_init_method"] == "normal" and hp["clip_gradient"] is None
    assert (hp["feature_dim"], hp["num_factors"]) == (100, 8)


def test_every_documented_name_is_known() -> None:
    documented = {
        "feature_dim",
        "num_factors",
        "predictor_type",
        "epochs",
        "mini_batch_size",
        "clip_gradient",
        "eps",
        "rescale_grad",
        "batch_metrics_publish_interval",  # in real jobs' default configuration, not in AWS's table
    }
    for group in ("bias", "linear", "factors"):
        documented |= {f"{group}_{s}" for s in ("lr", "wd", "init_method", "init_scale", "init_sigma", "init_value")}
    assert set(SPECS) == documented


def test_underscore_names_are_ignored() -> None:
    hp = parse_hyperparameters({**REQUIRED, "_tuning_objective_metric": "test:rmse"})
    assert "_tuning_objective_metric" not in hp


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("epochs", "0", "expected an integer > 0"),
        ("epochs", "2.5", "expected an integer > 0"),
        ("mini_batch_size", "many", "expected an integer > 0"),
        ("factors_lr", "-1", "expected a number >= 0"),
        ("predictor_type", "multiclass", "expected one of binary_classifier, regressor"),
        ("bias_init_method", "xavier", "expected one of uniform, normal, constant"),
        ("linear_wd", "nan", "expected a number >= 0"),
    ],
)
def test_invalid_values_name_the_parameter_and_range(name: str, value: str, expected: str) -> None:
    with pytest.raises(HyperParameterError) as err:
        parse_hyperparameters({**REQUIRED, name: value})
    assert f"'{name}'" in str(err.value) and expected in str(err.value) and repr(value) in str(err.value)


def test_unknown_and_missing_names() -> None:
    with pytest.raises(HyperParameterError, match=r"Unknown hyperparameter.*'learning_rate'"):
        parse_hyperparameters({**REQUIRED, "learning_rate": "0.1"})
    with pytest.raises(HyperParameterError, match=r"Missing required hyperparameter.*'feature_dim'"):
        parse_hyperparameters({"num_factors": "8", "predictor_type": "regressor"})


def test_init_method_needs_its_value() -> None:
    with pytest.raises(HyperParameterError, match="'factors_init_scale' is required"):
        parse_hyperparameters({**REQUIRED, "factors_init_method": "uniform"})
    hp = parse_hyperparameters({**REQUIRED, "bias_init_method": "constant", "bias_init_value": "3.5"})
    assert hp["bias_init_value"] == 3.5
