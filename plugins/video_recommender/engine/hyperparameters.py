"""Factorization Machines hyper-parameters: SageMaker's names, defaults and valid ranges.

Values arrive as strings (the ``HyperParameters`` map of CreateTrainingJob). Names
starting with ``_`` (SageMaker adds ``_tuning_objective_metric``) are accepted and
ignored. Anything else unknown, or a value out of range, fails the job with a
reason naming the hyper-parameter and what is valid, as SageMaker does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PREDICTOR_TYPES = ("binary_classifier", "regressor")
INIT_METHODS = ("uniform", "normal", "constant")


class HyperParameterError(ValueError):
    """An invalid hyper-parameter; the message is the job's FailureReason."""


@dataclass(frozen=True)
class _Spec:
    kind: str  # "int", "float", "choice"
    default: Any
    minimum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        word = "an integer" if self.kind == "int" else "a number"
        if self.minimum is None:
            return word
        return f"{word} {'>' if self.exclusive_minimum else '>='} {self.minimum:g}"


def _group(prefix: str, lr: float, wd: float, sigma: float) -> dict[str, _Spec]:
    return {
        f"{prefix}_lr": _Spec("float", lr, 0.0),
        f"{prefix}_wd": _Spec("float", wd, 0.0),
        f"{prefix}_init_method": _Spec("choice", "normal", choices=INIT_METHODS),
        f"{prefix}_init_scale": _Spec("float", None, 0.0),
        f"{prefix}_init_sigma": _Spec("float", sigma, 0.0),
        f"{prefix}_init_value": _Spec("float", None),
    }


SPECS: dict[str, _Spec] = {
    "feature_dim": _Spec("int", None, 0, exclusive_minimum=True),
    "num_factors": _Spec("int", None, 0, exclusive_minimum=True),
    "predictor_type": _Spec("choice", None, choices=PREDICTOR_TYPES),
    "epochs": _Spec("int", 1, 0, exclusive_minimum=True),
    "mini_batch_size": _Spec("int", 1000, 0, exclusive_minimum=True),
    "clip_gradient": _Spec("float", None, 0.0, exclusive_minimum=True),
    "eps": _Spec("float", None, 0.0, exclusive_minimum=True),
    "rescale_grad": _Spec("float", None, 0.0, exclusive_minimum=True),
    # Not in AWS's table, but in real jobs' default configuration (their "Final
    # configuration" log line): the running train metrics every N mini-batches.
    "batch_metrics_publish_interval": _Spec("int", 500, 0, exclusive_minimum=True),
    **_group("bias", 0.1, 0.01, 0.01),
    **_group("linear", 0.001, 0.001, 0.01),
    **_group("factors", 0.0001, 0.00001, 0.001),
}
REQUIRED = ("feature_dim", "num_factors", "predictor_type")


def _parse(name: str, raw: object, spec: _Spec) -> Any:
    text = str(raw).strip()
    problem = f"ClientError: Invalid value {str(raw)!r} for hyperparameter '{name}': expected {spec.describe()}"
    if spec.kind == "choice":
        if text not in spec.choices:
            raise HyperParameterError(problem)
        return text
    try:
        value = float(text)
    except ValueError:
        raise HyperParameterError(problem) from None
    if not math.isfinite(value):
        raise HyperParameterError(problem)
    if spec.kind == "int":
        if value != int(value):
            raise HyperParameterError(problem)
        value = int(value)
    if spec.minimum is not None and (value <= spec.minimum if spec.exclusive_minimum else value < spec.minimum):
        raise HyperParameterError(problem)
    return value


def parse_hyperparameters(raw: dict[str, str]) -> dict[str, Any]:
    """Validate string hyper-parameters and return typed values with defaults filled in."""
    unknown = sorted(k for k in raw if k not in SPECS and not k.startswith("_"))
    if unknown:
        raise HyperParameterError(
            f"ClientError: Unknown hyperparameter(s) {', '.join(repr(k) for k in unknown)}; "
            f"valid hyperparameters are: {', '.join(sorted(SPECS))}"
        )
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise HyperParameterError(
            "ClientError: Missing required hyperparameter(s) "
            + ", ".join(f"'{k}' ({SPECS[k].describe()})" for k in missing)
        )
    values = {name: spec.default for name, spec in SPECS.items()}
    for name, text in raw.items():
        if not name.startswith("_"):
            values[name] = _parse(name, text, SPECS[name])
    for group in ("bias", "linear", "factors"):
        method = values[f"{group}_init_method"]
        needed = {"uniform": "scale", "constant": "value"}.get(method)
        if needed and values[f"{group}_init_{needed}"] is None:
            raise HyperParameterError(
                f"ClientError: hyperparameter '{group}_init_{needed}' is required when "
                f"'{group}_init_method' is '{method}'"
            )
    return values
