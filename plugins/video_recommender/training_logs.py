"""Learning curves from a training job's log: FM's ``#quality_metric:`` lines, by the algorithm's own regexes.

FM prints, per epoch, ``#quality_metric: host=algo-1, epoch=N, train rmse <loss>=…`` (and
its other train metrics), and at the end the ``test`` channel's (the validate split's)
``#quality_metric: host=algo-1, test rmse <loss>=…`` (shared/reference/factorization-machines.md
§4, the ``train:<m>:epoch`` and ``test:<m>`` MetricDefinitions). Batch lines are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_EPOCH = re.compile(r"#quality_metric: host=(\S+), epoch=(\d+), train (\S+) <(?:loss|score)>=(\S+)")
_FINAL = re.compile(r"#quality_metric: host=(\S+), test (\S+) <(?:loss|score)>=(\S+)")


def learning_curve(lines: Iterable[str]) -> dict:
    """``{"epochs": {metric: [[epoch, value], ...]}, "validation": {metric: value}, "metric": shown}`` of the first host."""
    epochs: dict[str, list[list[float]]] = {}
    validation: dict[str, float] = {}
    host = None
    for line in lines:
        if match := _EPOCH.search(line):
            h, epoch, metric, value = match.groups()
            host = host or h
            if h == host:
                epochs.setdefault(metric, []).append([int(epoch), float(value)])
        elif match := _FINAL.search(line):
            h, metric, value = match.groups()
            if host is None or h == host:
                validation[metric] = float(value)
    shown = next((m for m in _PREFERRED if m in epochs), next(iter(epochs), None))
    return {"epochs": epochs, "validation": validation, "metric": shown}


# the metric a curve shows: the tuning objectives (docs/workflow.md), else the first one logged
_PREFERRED = ("rmse", "binary_classification_cross_entropy", "binary_classification_accuracy")
