"""Run one SageMaker request with the local FM engine, outside Airflow (like SageMaker's local mode).

    PYTHONPATH=plugins .venv/bin/python -m video_recommender.engine train --request training.json
    PYTHONPATH=plugins .venv/bin/python -m video_recommender.engine transform --request transform.json \\
        [--model create-model.json | --model-data path/to/model.tar.gz]
    PYTHONPATH=plugins .venv/bin/python -m video_recommender.engine tune --request tuning.json

REQUEST is the boto3 request as JSON (CreateTrainingJob, CreateTransformJob, or
CreateHyperParameterTuningJob), with ``file://`` URIs or plain paths wherever S3 URIs
would be. For transform, the model comes from ``--model`` (a CreateModel request),
``--model-data``, or a REQUEST of the operator's form ``{"Model": ..., "Transform": ...}``.
The algorithm's log lines go to stdout with CloudWatch's line prefix; outputs land
where SageMaker writes them (``<S3OutputPath>/<TrainingJobName>/output/model.tar.gz``,
``<S3OutputPath>/<input object>.out``). Exit status 0 when the job completes; 1 with
the FailureReason on stderr when it fails; 2 for a request this command cannot read.
``--describe FILE`` also writes the Describe… response as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

KINDS = ("train", "transform", "tune")


class RequestError(ValueError):
    """A request file this command cannot use; the message says which and why."""


def resolve(location: str) -> Path:
    """``file://`` URIs and plain paths (relative to the current directory) are local files;
    anything else is refused (this runs offline)."""
    parsed = urlparse(location)
    if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
        raise RequestError(
            f"{location!r}: a file:// URI needs an absolute path (file:///...), not host {parsed.netloc!r}"
        )
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme else location)
    raise RequestError(f"{location!r}: only file:// URIs or local paths can be read offline (not {parsed.scheme}://)")


LOCATION_KEYS = ("S3Uri", "S3OutputPath", "ModelDataUrl")


def check_locations(request: Any) -> None:
    """Resolve every S3 location of a request up front, so a bad one fails before any work."""
    if isinstance(request, dict):
        for key, value in request.items():
            if key in LOCATION_KEYS and isinstance(value, str):
                resolve(value)
            else:
                check_locations(value)
    elif isinstance(request, list):
        for item in request:
            check_locations(item)


def _load(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(f"{path}: cannot read the {what}: {getattr(exc, 'strerror', None) or exc}") from exc
    except json.JSONDecodeError as exc:
        raise RequestError(f"{path}: line {exc.lineno} column {exc.colno}: not JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise RequestError(f"{path}: expected a JSON object (the boto3 {what}), got {type(data).__name__}")
    return data


def cloudwatch_line(line: str) -> str:
    """A log line with the prefix FM's lines carry in CloudWatch: ``[MM/DD/YYYY HH:MM:SS INFO <thread>]``."""
    now = dt.datetime.now(dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
    return f"[{now} INFO {threading.get_ident()}] {line}"


def _emit(line: str) -> None:
    print(cloudwatch_line(line), flush=True)


def transform_config(request: dict, model: Path | None, model_data: str | None) -> dict:
    """The ``{"Model": CreateModel, "Transform": CreateTransformJob}`` pair the engine runs."""
    if "Transform" in request:
        if model is not None or model_data is not None:
            raise RequestError('the request already holds {"Model": ..., "Transform": ...}; drop --model/--model-data')
        return request
    if model is not None:
        model_request = _load(model, "CreateModel request")
    elif model_data is not None:
        model_request = {
            "ModelName": request.get("ModelName", "local-model"),
            "PrimaryContainer": {"ModelDataUrl": model_data},
        }
    else:
        raise RequestError(
            "transform needs the model: --model CREATE_MODEL.json, --model-data path/to/model.tar.gz, "
            'or a request of the form {"Model": ..., "Transform": ...}'
        )
    return {"Model": model_request, "Transform": request}


def run(kind: str, request: dict, args: argparse.Namespace) -> tuple[dict, str, str]:
    """Run the request; returns (describe response, status, failure reason)."""
    if kind == "train":
        from video_recommender.engine.training import run_training_job

        check_locations(request)
        describe = run_training_job(request, resolve, _emit)
        return describe, describe["TrainingJobStatus"], describe.get("FailureReason", "")
    if kind == "transform":
        from video_recommender.engine.transform import run_transform_job

        config = transform_config(request, args.model, args.model_data)
        check_locations(config)
        result = run_transform_job(config, resolve, _emit)
        describe = result["Transform"]
        return describe, describe["TransformJobStatus"], describe.get("FailureReason", "")
    from video_recommender.engine.tuning import run_tuning_job

    check_locations(request)
    describe = run_tuning_job(request, resolve, _emit)
    return describe, describe["HyperParameterTuningJobStatus"], describe.get("FailureReason", "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m video_recommender.engine", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=KINDS, help="the job kind of REQUEST")
    parser.add_argument("--request", type=Path, required=True, help="the boto3 request as JSON")
    parser.add_argument("--model", type=Path, help="transform: a CreateModel request (JSON)")
    parser.add_argument("--model-data", help="transform: the model.tar.gz (path or file:// URI)")
    parser.add_argument("--describe", type=Path, help="also write the Describe... response here (JSON)")
    args = parser.parse_args(argv)
    try:
        request = _load(args.request, "request")
        describe, status, reason = run(args.kind, request, args)
    except RequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.describe is not None:
        args.describe.write_text(json.dumps(describe, indent=2, default=_json_default) + "\n")
    if status in ("Completed", "Stopped"):
        print(f"{status}: {_outputs(args.kind, describe)}", file=sys.stderr)
        return 0
    print(f"{status}: {reason}", file=sys.stderr)
    return 1


def _outputs(kind: str, describe: dict) -> str:
    if kind == "train":
        return describe["ModelArtifacts"]["S3ModelArtifacts"]
    if kind == "transform":
        return describe["TransformOutput"].get("S3OutputPath", "")
    return "best training job " + describe["BestTrainingJob"]["TrainingJobName"]


def _json_default(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
