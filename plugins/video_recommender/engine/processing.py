"""CreateProcessingJob semantics for the local backend: ``processing_entry`` run in-process.

What SageMaker does with a Processing job
(https://docs.aws.amazon.com/sagemaker/latest/dg/build-your-own-processing-container.html,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingS3Input.html,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingS3Output.html):

1. every ``ProcessingInputs[].S3Input`` (``S3InputMode=File``) is copied under its
   ``LocalPath``: each object under the ``S3Prefix`` keeps its key relative to the prefix;
2. the container runs ``ContainerEntrypoint + ContainerArguments``; exit code 0 is
   Completed, anything else Failed;
3. with ``S3UploadMode=EndOfJob``, every file under each output's ``LocalPath`` is
   uploaded to its ``S3Uri`` with its path relative to ``LocalPath``.

Here ``/opt/ml/processing`` is a temporary folder, and the container is
``processing_entry.main`` of this package (the very code ``start`` uploaded as the
job's ``code`` input), called in-process: a second interpreter would import the
package again, and this engine runs only our own entry script. Outputs are uploaded
only when the entry succeeds, so a failed job leaves no half-written run folder.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from video_recommender.engine.training import input_objects, local_arn
from video_recommender.storage import Resolver, write_atomically

CONTAINER_ROOT = "/opt/ml/processing"
ENTRY_SCRIPT = "processing_entry.py"


class ProcessingFailed(Exception):
    pass


def _local(path: str, base: Path) -> Path:
    if not (path == CONTAINER_ROOT or path.startswith(CONTAINER_ROOT + "/")):
        raise ProcessingFailed(f"ClientError: LocalPath {path!r} is not under {CONTAINER_ROOT}")
    return base / path.removeprefix(CONTAINER_ROOT).lstrip("/")


def _download_inputs(request: dict, base: Path, resolve: Resolver) -> None:
    for item in request.get("ProcessingInputs", []):
        s3 = item.get("S3Input")
        if not s3:
            raise ProcessingFailed(f"ClientError: input {item.get('InputName')!r}: only S3Input is supported")
        if s3.get("S3InputMode", "File") != "File":
            raise ProcessingFailed(f"ClientError: input {item.get('InputName')!r}: only S3InputMode=File is supported")
        target = _local(s3["LocalPath"], base)
        objects = input_objects({"S3Uri": s3["S3Uri"], "S3DataType": s3.get("S3DataType", "S3Prefix")}, resolve)
        if not objects:
            raise ProcessingFailed(f"ClientError: no objects under {s3['S3Uri']} (input {item.get('InputName')!r})")
        for obj, relative in objects:
            local = target / relative
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(obj.read_bytes())


def _run_container(request: dict, base: Path) -> None:
    app = request.get("AppSpecification", {})
    entrypoint = app.get("ContainerEntrypoint", [])
    if len(entrypoint) != 2 or Path(entrypoint[1]).name != ENTRY_SCRIPT:
        raise ProcessingFailed(f"ClientError: the local engine runs only {ENTRY_SCRIPT}, not {entrypoint}")
    args = [str(_local(a, base)) if a.startswith(CONTAINER_ROOT) else a for a in app.get("ContainerArguments", [])]
    from video_recommender import processing_entry

    try:
        code = processing_entry.main(args)
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # what a container's traceback would end with
        raise ProcessingFailed(f"AlgorithmError: {type(exc).__name__}: {exc}") from exc
    if code not in (0, None):
        raise ProcessingFailed(f"AlgorithmError: {ENTRY_SCRIPT} exited with {code}")


def _upload_outputs(request: dict, base: Path, resolve: Resolver) -> int:
    uploaded = 0
    for item in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
        s3 = item["S3Output"]
        folder = _local(s3["LocalPath"], base)
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            write_atomically(resolve(f"{s3['S3Uri'].rstrip('/')}/{f.relative_to(folder).as_posix()}"), f.read_bytes())
            uploaded += 1
    return uploaded


def run_processing_job(request: dict, resolve: Resolver, emit: Callable[[str], None] = print) -> dict:
    """Run a CreateProcessingJob request locally; return its DescribeProcessingJob."""
    name = request.get("ProcessingJobName", "")
    created = dt.datetime.now(dt.UTC)
    describe: dict[str, Any] = {
        **{k: request[k] for k in ("ProcessingInputs", "ProcessingOutputConfig", "AppSpecification") if k in request},
        **{k: request[k] for k in ("ProcessingResources", "StoppingCondition", "RoleArn") if k in request},
        "ProcessingJobName": name,
        "ProcessingJobArn": local_arn("processing-job", name),
        "CreationTime": created,
        "ProcessingStartTime": created,
    }
    try:
        with tempfile.TemporaryDirectory(prefix="processing-") as tmp:
            base = Path(tmp)
            _download_inputs(request, base, resolve)
            _run_container(request, base)
            uploaded = _upload_outputs(request, base, resolve)
        emit(f"[{name}] completed; uploaded {uploaded} output file(s)")
        describe.update(ProcessingJobStatus="Completed", ExitMessage="")
    except ProcessingFailed as exc:
        describe.update(ProcessingJobStatus="Failed", FailureReason=str(exc))
    describe["ProcessingEndTime"] = dt.datetime.now(dt.UTC)
    return describe
