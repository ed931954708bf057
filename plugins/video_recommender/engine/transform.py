"""CreateTransformJob semantics for the local FM engine (batch transform).

Takes the same ``{"Model": CreateModel request, "Transform": CreateTransformJob request}``
pair that ``SageMakerTransformOperator`` takes. Each input object under the
input prefix is scored record by record (``SplitType=RecordIO``) and written to
``<S3OutputPath>/<input object name>.out``: with ``Accept=application/jsonlines``
and ``AssembleWith=Line`` one ``{"score": ...}`` line per record (plus
``"predicted_label"`` for the classifier) in input order; without ``AssembleWith``
the records are concatenated with nothing between them, as SageMaker does; with
``application/json`` one ``{"predictions": [...]}`` document.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from video_recommender.data.recordio import RecordIOError
from video_recommender.engine.artifacts import ModelArtifactError, read_model_tar_gz
from video_recommender.engine.jsonlines import json_lines
from video_recommender.engine.recordio_decode import read_sparse_fast
from video_recommender.engine.training import RECORDIO, JobFailed, input_objects, local_arn, score
from video_recommender.storage import PathLike, Resolver, write_atomically

ACCEPTS = ("application/jsonlines", "application/json")


def format_predictions(pred: np.ndarray, classifier: bool, accept: str, assemble_with: str = "Line") -> bytes:
    """Serialise scores as FM's batch transform does (JSON Lines, or one JSON document)."""
    lines = json_lines(pred, classifier)
    if assemble_with != "Line":
        lines = lines.replace(b"\n", b"")
    if accept == "application/json":
        items = lines.rstrip(b"\n").replace(b"\n", b", ")
        return b'{"predictions": [' + items + b"]}"
    return lines


def _model_record(registry: PathLike, name: str) -> PathLike:
    if not name or "/" in name:
        raise JobFailed(f"ValidationException: ModelName {name!r} is not a model name")
    return registry / f"{name}.json"


def list_models(registry: PathLike) -> list[str]:
    """The names of the models CreateModel registered locally (ListModels)."""
    if not registry.exists():
        return []
    return sorted(p.name.removesuffix(".json") for p in registry.iterdir() if p.name.endswith(".json"))


def delete_model(registry: PathLike, name: str) -> bool:
    """DeleteModel locally; ``False`` when there is no such model."""
    record = _model_record(registry, name)
    if not record.exists():
        return False
    record.unlink()
    return True


def run_transform_job(
    config: dict, resolve: Resolver, emit: Callable[[str], None] = print, model_registry: PathLike | None = None
) -> dict:
    """Run a batch transform locally; return ``{"Model": ..., "Transform": <DescribeTransformJob>}``.

    With ``model_registry``, the Model is recorded there as SageMaker's CreateModel
    would keep it (before the transform runs, and whether or not it succeeds), so a
    teardown has something to delete, as on AWS.
    """
    model_request, request = config.get("Model", {}), config.get("Transform", config)
    name = request.get("TransformJobName", "")
    created = dt.datetime.now(dt.UTC)
    describe: dict[str, Any] = {
        "TransformJobName": name,
        "TransformJobArn": local_arn("transform-job", name),
        "ModelName": request.get("ModelName", ""),
        "TransformInput": request.get("TransformInput", {}),
        "TransformOutput": request.get("TransformOutput", {}),
        "TransformResources": request.get("TransformResources", {}),
        "BatchStrategy": request.get("BatchStrategy"),
        "CreationTime": created,
        "TransformStartTime": created,
    }
    try:
        model_url = model_request.get("PrimaryContainer", {}).get("ModelDataUrl")
        if not model_url:
            raise JobFailed("ClientError: the Model request has no PrimaryContainer.ModelDataUrl")
        try:
            model = read_model_tar_gz(resolve(model_url).read_bytes(), source=model_url)
        except (ModelArtifactError, FileNotFoundError) as exc:
            raise JobFailed(f"ClientError: cannot load the model from {model_url}: {exc}") from exc
        if model_registry is not None:
            record = _model_record(model_registry, model_request.get("ModelName", ""))
            write_atomically(record, json.dumps(model_request, sort_keys=True).encode())
        t_in, t_out = describe["TransformInput"], describe["TransformOutput"]
        if t_in.get("ContentType", RECORDIO) != RECORDIO:
            raise JobFailed(f"ClientError: ContentType {t_in.get('ContentType')!r} is not supported; use {RECORDIO}")
        if t_in.get("SplitType", "None") != "RecordIO":
            raise JobFailed("ClientError: SplitType must be 'RecordIO' for RecordIO-protobuf input")
        accept = t_out.get("Accept", "application/jsonlines")
        if accept not in ACCEPTS:
            raise JobFailed(f"ClientError: Accept {accept!r} is not supported; use one of {', '.join(ACCEPTS)}")
        assemble_with = t_out.get("AssembleWith", "None")
        if assemble_with not in ("Line", "None"):
            raise JobFailed(f"ValidationException: AssembleWith {assemble_with!r} must be 'Line' or 'None'")
        source = t_in.get("DataSource", {}).get("S3DataSource", {})
        objects = input_objects(source, resolve)
        if not objects:
            raise JobFailed(f"ClientError: no input objects under {source.get('S3Uri')}")
        out_root = t_out["S3OutputPath"].rstrip("/")
        classifier = model.predictor_type == "binary_classifier"

        def transform_object(item: tuple[Any, str]) -> int:
            f, name_in_prefix = item
            try:
                rows, _ = read_sparse_fast(f.read_bytes(), source=str(f))
            except RecordIOError as exc:
                raise JobFailed(f"ClientError: {exc}") from exc
            if rows.n_rows and (rows.n_cols > model.feature_dim or int(rows.indices.max()) >= model.feature_dim):
                raise JobFailed(
                    f"ClientError: {f} has feature dimension {rows.n_cols}; the model expects {model.feature_dim}"
                )
            pred = score(model, rows) if rows.n_rows else np.zeros(0, np.float32)
            write_atomically(
                resolve(f"{out_root}/{name_in_prefix}.out"), format_predictions(pred, classifier, accept, assemble_with)
            )
            return rows.n_rows

        # Objects are independent (as on SageMaker's instances): score them side by side;
        # the compiled steps release the GIL.
        with ThreadPoolExecutor(max_workers=min(len(objects), os.cpu_count() or 1)) as pool:
            records = sum(pool.map(transform_object, objects))
        emit(f"[{name}] scored {records} records from {len(objects)} object(s) into {out_root}")
    except JobFailed as exc:
        end = dt.datetime.now(dt.UTC)
        describe.update(TransformJobStatus="Failed", FailureReason=str(exc), TransformEndTime=end)
        return {"Model": {"ModelName": model_request.get("ModelName")}, "Transform": describe}
    end = dt.datetime.now(dt.UTC)
    describe.update(TransformJobStatus="Completed", TransformEndTime=end)
    model_describe = {
        "ModelName": model_request.get("ModelName"),
        "PrimaryContainer": model_request.get("PrimaryContainer"),
        "ExecutionRoleArn": model_request.get("ExecutionRoleArn"),
    }
    return {"Model": model_describe, "Transform": describe}
