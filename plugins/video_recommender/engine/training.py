"""CreateTrainingJob semantics for the local FM engine.

``run_training_job(request, resolve)`` takes the very request dict that
``SageMakerTrainingOperator`` would send to AWS, trains on the ``train`` channel,
scores the optional ``test`` channel, prints FM's ``#quality_metric:`` lines, writes
``<S3OutputPath>/<TrainingJobName>/output/model.tar.gz`` and returns a
DescribeTrainingJob-shaped dict (``TrainingJobStatus`` ``Completed`` or ``Failed``
with a ``FailureReason``), as the SageMaker API would.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from video_recommender.data.recordio import RecordIOError, SparseRows
from video_recommender.engine.artifacts import FMModel, write_model_tar_gz
from video_recommender.engine.hyperparameters import HyperParameterError, parse_hyperparameters
from video_recommender.engine.recordio_decode import read_sparse_fast
from video_recommender.metrics import classification_metrics, regression_metrics
from video_recommender.storage import Resolver, list_files, relative_name, uri, write_atomically

log = logging.getLogger(__name__)
HOST = "algo-1"
RECORDIO = "application/x-recordio-protobuf"
CHANNELS = ("train", "test")
INIT_SEED = 20170  # FM exposes no seed; a fixed one makes runs comparable
# Log names -> the algorithm's MetricDefinitions (the names SageMaker reports). FM also
# prints test mse and absolute_loss, which have no MetricDefinition.
FINAL_METRICS = {
    "rmse": "test:rmse",
    "binary_classification_accuracy": "test:binary_classification_accuracy",
    "binary_classification_cross_entropy": "test:binary_classification_cross_entropy",
    "binary_f_1.000": "test:binary_f_beta",
}


class JobFailed(Exception):
    """Raised inside the engine; its message becomes the job's FailureReason."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def read_channel(channel: dict, resolve: Resolver) -> tuple[SparseRows, np.ndarray]:
    """Read every RecordIO object under a channel's S3Uri into one CSR matrix and labels."""
    name = channel.get("ChannelName", "?")
    source = channel.get("DataSource", {}).get("S3DataSource", {})
    uri = source.get("S3Uri")
    if not uri:
        raise JobFailed(f"ClientError: channel '{name}' has no DataSource.S3DataSource.S3Uri")
    content_type = channel.get("ContentType", RECORDIO)
    if content_type != RECORDIO:
        raise JobFailed(
            f"ClientError: channel '{name}' ContentType {content_type!r} is not supported; FM reads {RECORDIO}"
        )
    files = [f for f, _ in input_objects(source, resolve)]
    if not files:
        raise JobFailed(f"ClientError: channel '{name}': no data found under {uri}")
    parts, labels = [], []
    for f in files:
        try:
            rows, y = read_sparse_fast(f.read_bytes(), source=str(f))
        except RecordIOError as exc:
            raise JobFailed(f"ClientError: channel '{name}': {exc}") from exc
        if y is None or np.isnan(y).any():
            raise JobFailed(f"ClientError: channel '{name}': {f} has records without a label")
        parts.append(rows)
        labels.append(y)
    return _concat(parts), np.concatenate(labels).astype(np.float32)


def local_arn(resource: str, name: str) -> str:
    """The ARN a job of the local engine reports: SageMaker's shape, region "local", account zero."""
    return f"arn:aws:sagemaker:local:000000000000:{resource}/{name.lower()}"


def input_objects(source: dict, resolve: Resolver) -> list[tuple[Any, str]]:
    """The objects an ``S3DataSource`` names, each with its name relative to the prefix.

    ``S3Prefix``: every object under the prefix. ``ManifestFile``: a JSON list whose
    first element is ``{"prefix": ...}`` and whose other elements are keys under it.
    """
    uri, kind = source.get("S3Uri", ""), source.get("S3DataType", "S3Prefix")
    if kind == "S3Prefix":
        prefix = resolve(uri)
        if uri.endswith("/") or prefix.is_file():
            return [(f, relative_name(f, prefix)) for f in list_files(prefix)]
        # A key prefix, not a folder: as in S3, ".../test" also selects ".../test-old/..."
        # and ".../test.bak" (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_S3DataSource.html).
        parent, stem = prefix.parent, prefix.name
        matches = [c for c in (parent.iterdir() if parent.exists() else []) if c.name.startswith(stem)]
        files = sorted((f for c in matches for f in list_files(c)), key=str)
        return [(f, str(f)[len(str(prefix)) :].lstrip("/")) for f in files]
    if kind == "ManifestFile":
        try:
            manifest = json.loads(resolve(uri).read_text())
            base = manifest[0]["prefix"].rstrip("/")
            keys = [str(k) for k in manifest[1:]]
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise JobFailed(f'ClientError: {uri} is not a manifest ([{{"prefix": ...}}, key, ...]): {exc}') from exc
        return [(resolve(f"{base}/{key}"), key) for key in keys]
    raise JobFailed(f"ClientError: S3DataType {kind!r} is not supported (use S3Prefix or ManifestFile)")


def _concat(parts: list[SparseRows]) -> SparseRows:
    """One CSR matrix from the objects of a channel (int32 keys, float32 values), copying no more than needed."""
    if len(parts) == 1:
        p = parts[0]
        return SparseRows(
            p.indptr, p.indices.astype(np.int32, copy=False), p.values.astype(np.float32, copy=False), p.n_cols
        )
    offsets = np.cumsum([0] + [p.indptr[-1] for p in parts])
    indptr = np.concatenate([parts[0].indptr[:1]] + [p.indptr[1:] + off for p, off in zip(parts, offsets, strict=True)])
    return SparseRows(
        indptr.astype(np.int64, copy=False),
        np.concatenate([p.indices for p in parts], dtype=np.int32),
        np.concatenate([p.values for p in parts], dtype=np.float32),
        max(p.n_cols for p in parts),
    )


def _init(rng: np.random.Generator, hp: dict, group: str, shape: tuple[int, ...]) -> np.ndarray:
    """Initial float32 parameters, drawn in float32 (a float64 draw of v would double its memory)."""
    method = hp[f"{group}_init_method"]
    if method == "normal":
        arr = rng.standard_normal(shape, dtype=np.float32)
        arr *= np.float32(hp[f"{group}_init_sigma"])
    elif method == "uniform":
        scale = np.float32(hp[f"{group}_init_scale"])
        arr = rng.random(shape, dtype=np.float32)
        arr *= 2 * scale
        arr -= scale
    else:
        arr = np.full(shape, hp[f"{group}_init_value"], dtype=np.float32)
    return arr


def _check_features(rows: SparseRows, feature_dim: int, channel: str) -> None:
    if rows.n_cols != feature_dim or (len(rows.indices) and int(rows.indices.max()) >= feature_dim):
        raise JobFailed(
            f"ClientError: channel '{channel}' has feature dimension {rows.n_cols} but hyperparameter "
            f"'feature_dim' is {feature_dim}; they must be equal"
        )


def test_metrics(model: FMModel, rows: SparseRows, y: np.ndarray) -> dict[str, float]:
    """FM's test-channel metrics for ``model`` on labelled rows (the order FM prints them)."""
    pred = score(model, rows)
    if model.predictor_type == "binary_classifier":
        return classification_metrics(pred, y)
    return regression_metrics(pred, y)


def _score_kind(name: str) -> str:
    return "<score>" if name in ("binary_classification_accuracy", "binary_f_1.000") else "<loss>"


def metric_line(scope: str, name: str, value: float, epoch: int | None = None, batch: int | None = None) -> str:
    """A ``#quality_metric:`` line in FM's format (matches the official MetricDefinitions).

    ``epoch=N, batch=B train ...`` has no comma before ``train``, as real FM logs print it.
    """
    where = f"host={HOST}, " + (f"epoch={epoch}, " if epoch is not None else "")
    if batch is not None:
        where = where.removesuffix(", ") + f", batch={batch} "
    return f"#quality_metric: {where}{scope} {name} {_score_kind(name)}={value}"


OBJECTIVE_LOSS = {"regressor": "rmse", "binary_classifier": "binary_classification_cross_entropy"}

EpochHook = Callable[[int, FMModel], bool]


def _train_metrics(pred: np.ndarray, y: np.ndarray, classifier: bool) -> dict[str, float]:
    """Metrics of the predictions made during an epoch (before each mini-batch's update)."""
    if classifier:
        z = np.clip(pred.astype(np.float64), -35.0, 35.0)
        return classification_metrics(1.0 / (1.0 + np.exp(-z)), y)
    return regression_metrics(pred, y)


def _configuration_line(hp: dict[str, Any]) -> str:
    """The resolved hyper-parameters, as FM logs its ``Final configuration``."""
    shown = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in hp.items() if v is not None}
    return f"Final configuration: {shown | {'_optimizer': 'adam', '_learning_rate': '1.0', '_wd': '1.0'}}"


def train_model(
    train: SparseRows,
    y: np.ndarray,
    hp: dict[str, Any],
    emit: Callable[[str], None] = print,
    on_epoch: EpochHook | None = None,
    *,
    init_seed: int = INIT_SEED,
) -> tuple[FMModel, list[float]]:
    """Train an FM as real SageMaker FM does (see ``fm``: lazy Adam, file order); returns the
    model and the objective's train loss per epoch (RMSE, or cross-entropy for the classifier).

    ``on_epoch(epoch, model)`` runs after every epoch; returning True stops training
    early (tuning's early stopping), so fewer losses than ``epochs`` come back.
    ``init_seed`` draws the initial parameters (FM has no seed hyper-parameter).
    """
    from video_recommender.engine import fm  # numba: imported when a job runs, never at DAG parse

    classifier = hp["predictor_type"] == "binary_classifier"
    if classifier and not np.isin(y, (0.0, 1.0)).all():
        raise JobFailed("ClientError: binary_classifier needs labels 0 or 1 in the 'train' channel")
    rng = np.random.default_rng(init_seed)
    d, k = hp["feature_dim"], hp["num_factors"]
    w0 = _init(rng, hp, "bias", (1,))
    w = _init(rng, hp, "linear", (d,))
    table = fm.parameter_table(w, _init(rng, hp, "factors", (d, k)))  # the factors are freed once copied
    del w
    state_bias = np.zeros(2, dtype=np.float32)
    batch = hp["mini_batch_size"]
    # MXNet's defaults where FM leaves a value unset: rescale_grad = 1/batch (set by
    # Module.init_optimizer), no clipping (-1), Adam's epsilon 1e-8.
    unset = {"rescale_grad": 1.0 / batch, "clip_gradient": -1.0, "eps": 1e-8, "beta1": fm.BETA1, "beta2": fm.BETA2}
    optimizer = np.array([hp.get(name) if hp.get(name) is not None else unset[name] for name in fm.OPTIMIZER])
    n = train.n_rows
    # File order, no shuffle (real FM reads its records sequentially). A last, shorter
    # mini-batch is trained as it is, with the same rescale_grad (our decision: FM's
    # handling of a partial batch is undocumented).
    bounds = np.append(np.arange(0, n, batch), n).astype(np.int64)
    indptr = train.indptr.astype(np.int64, copy=False)
    indices = train.indices.astype(np.int32, copy=False)
    values = train.values.astype(np.float32, copy=False)
    y = y.astype(np.float32, copy=False)
    if len(indices) >= 2**31:  # the grouping's int32 positions (2**31 nonzeros would be 16 GiB of data)
        raise JobFailed(f"ClientError: {len(indices)} nonzeros in the 'train' channel; this engine takes < 2**31")
    grouping = fm.group_features(indptr, indices, bounds)
    predictions = np.empty(n, dtype=np.float32)
    emit(_configuration_line(hp))

    def current_model() -> FMModel:  # views into the table: what the parameters are now
        return FMModel(w0, table[:, k], table[:, :k], hp["predictor_type"])

    # Load (or compile, the first time ever) the kernel before timing epoch 0.
    fm.train_epoch(
        indptr, indices, values, y, bounds[:1], grouping, w0.copy(), state_bias.copy(), table[:1].copy(), k,
        optimizer, 0, classifier, predictions,
    )  # fmt: skip
    losses: list[float] = []
    updates = 0
    metrics: dict[str, float] = {}
    epochs = hp["epochs"]
    for epoch in range(epochs):
        start = time.perf_counter()
        updates = fm.train_epoch(
            indptr, indices, values, y, bounds, grouping, w0, state_bias, table, k,
            optimizer, updates, classifier, predictions,
        )  # fmt: skip
        seconds = max(time.perf_counter() - start, 1e-9)
        if not np.isfinite(predictions).all() or not np.isfinite(w0).all():
            raise JobFailed(
                f"AlgorithmError: training diverged in epoch {epoch} (loss is not finite); lower the learning rates"
            )
        # The epoch's running metrics at batch 0, N, 2N, ... (N = batch_metrics_publish_interval).
        for b in range(0, len(bounds) - 1, hp["batch_metrics_publish_interval"]):
            seen = bounds[b + 1]
            for name, value in _train_metrics(predictions[:seen], y[:seen], classifier).items():
                emit(metric_line("train", name, value, epoch=epoch, batch=b))
        metrics = _train_metrics(predictions, y, classifier)
        for name, value in metrics.items():
            emit(metric_line("train", name, value, epoch=epoch))
        losses.append(metrics[OBJECTIVE_LOSS[hp["predictor_type"]]])
        emit(f"#progress_metric: host={HOST}, completed {100.0 * (epoch + 1) / epochs} % of epochs")
        emit(f"#throughput_metric: host={HOST}, train throughput={n / seconds} records/second")
        if on_epoch is not None and on_epoch(epoch, current_model()):
            emit(f"training stopped early after epoch {epoch}")
            break
    for name, value in metrics.items():  # FM repeats the last epoch's figures without "epoch="
        emit(metric_line("train", name, value))
    final = current_model()
    if not (np.isfinite(final.v).all() and np.isfinite(final.w).all()):  # the last updates, unseen by any prediction
        raise JobFailed(
            "AlgorithmError: training diverged in the last epoch (parameters not finite); lower the learning rates"
        )
    return FMModel(final.w0, np.ascontiguousarray(final.w), np.ascontiguousarray(final.v), final.predictor_type), losses


def score(model: FMModel, rows: SparseRows) -> np.ndarray:
    from video_recommender.engine import fm

    return fm.predict(
        rows.indptr.astype(np.int64),
        rows.indices.astype(np.int32),
        rows.values.astype(np.float32),
        model.w0,
        model.w,
        model.v,
        model.predictor_type == "binary_classifier",
    )


Channels = dict[str, tuple[SparseRows, np.ndarray]]


def run_training_job(
    request: dict,
    resolve: Resolver,
    emit: Callable[[str], None] = print,
    *,
    data: Channels | None = None,
    on_epoch: EpochHook | None = None,
) -> dict:
    """Run a CreateTrainingJob request locally; return the DescribeTrainingJob response.

    ``data`` may hold channels already read (a tuning job reads them once for all its
    training jobs); ``on_epoch`` is passed to ``train_model``. A job stopped early by
    ``on_epoch`` ends ``Stopped``, with its model and metrics, as SageMaker's early stopping.
    """
    name = request.get("TrainingJobName", "")
    created = _now()
    describe: dict[str, Any] = {
        "TrainingJobName": name,
        "TrainingJobArn": local_arn("training-job", name),
        "HyperParameters": dict(request.get("HyperParameters", {})),
        "AlgorithmSpecification": request.get("AlgorithmSpecification", {}),
        "RoleArn": request.get("RoleArn", ""),
        "InputDataConfig": request.get("InputDataConfig", []),
        "OutputDataConfig": request.get("OutputDataConfig", {}),
        "ResourceConfig": request.get("ResourceConfig", {}),
        "StoppingCondition": request.get("StoppingCondition", {}),
        "CreationTime": created,
        "TrainingStartTime": created,
    }
    try:
        if not name:
            raise JobFailed("ValidationException: TrainingJobName is required")
        hp = parse_hyperparameters(describe["HyperParameters"])
        channels = {c.get("ChannelName"): c for c in describe["InputDataConfig"]}
        unknown = sorted(set(channels) - set(CHANNELS))
        if unknown or "train" not in channels:
            raise JobFailed(
                f"ClientError: FM takes channels 'train' (required) and 'test' (optional); got {sorted(channels)}"
            )
        output = describe["OutputDataConfig"].get("S3OutputPath")
        if not output:
            raise JobFailed("ValidationException: OutputDataConfig.S3OutputPath is required")
        if data is None:
            data = {name: read_channel(channels[name], resolve) for name in channels}
        _check_features(data["train"][0], hp["feature_dim"], "train")
        emit(
            f"[{name}] train channel: {data['train'][0].n_rows} records, feature_dim {hp['feature_dim']}, "
            f"num_factors {hp['num_factors']}"
        )
        if "test" in channels:
            _check_features(data["test"][0], hp["feature_dim"], "test")
        model, losses = train_model(*data["train"], hp, emit, on_epoch)
        final: dict[str, float] = {}
        if "test" in channels:
            final = test_metrics(model, *data["test"])
            for metric, value in final.items():
                emit(f"#test_score ({HOST}) : {(metric, value)!r}")
            for metric, value in final.items():
                emit(metric_line("test", metric, value))
        artifact = resolve(output.rstrip("/") + f"/{name}/output/model.tar.gz")
        write_atomically(artifact, write_model_tar_gz(model))
    except (JobFailed, HyperParameterError) as exc:
        emit(f"[{name}] failed: {exc}")
        end = _now()
        describe.update(
            TrainingJobStatus="Failed",
            SecondaryStatus="Failed",
            FailureReason=str(exc),
            TrainingEndTime=end,
            LastModifiedTime=end,
        )
        return describe
    end = _now()
    status = "Completed" if len(losses) == hp["epochs"] else "Stopped"
    describe.update(
        TrainingJobStatus=status,
        SecondaryStatus=status,
        ModelArtifacts={"S3ModelArtifacts": uri(artifact)},
        TrainingEndTime=end,
        LastModifiedTime=end,
        TrainingTimeInSeconds=int((end - created).total_seconds()),
        FinalMetricDataList=[
            {"MetricName": FINAL_METRICS[m], "Value": v, "Timestamp": end}
            for m, v in final.items()
            if m in FINAL_METRICS
        ],
    )
    return describe
