"""Task bodies for the DAG: turn Airflow context and settings into calls of the plain steps.

This module and ``operators.py`` are the ones that know about Airflow: they build the
run's ``Run`` (``layout``) with ``ObjectStoragePath`` from the settings and the task's
own run id, and hand its paths to the Airflow-free code in ``data/``, ``steps.py``,
``evaluate.py`` and ``sagemaker_requests.py``. No task takes another's output as an
argument: what a task needs of an earlier one is read from the run folder
(``prepared_of``) or pulled from the branch that ran (``trained``), so the DAG's edges
are its order and nothing else.

The job tasks' requests are built here too, when the task runs (``*_job_request``,
called by ``operators.RequestAtRunTime``): they depend on the run id and on what ran
before, and are shown as the task's rendered ``config``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from airflow.exceptions import AirflowException
from airflow.sdk import ObjectStoragePath

from video_recommender import sagemaker_requests as requests
from video_recommender.assets import triggering_input
from video_recommender.layout import Run
from video_recommender.settings import Settings
from video_recommender.storage import uri

# Steps that need numpy/pandas/pyarrow are imported inside the task bodies: the DAG
# processor imports this module on every parse and should not pay for them.

log = logging.getLogger(__name__)

# The branch and its job tasks, whose results later tasks pull (the DAG names its tasks so).
BRANCH_TASK, TRAIN_TASK, TUNE_TASK = "choose_training", "train", "tune"
BRANCH_KEY = "branch"


def storage_path(uri: str, settings: Settings) -> ObjectStoragePath:
    """A local path, ``file://`` or ``s3://`` URI as an ``ObjectStoragePath``."""
    if "://" not in uri:
        uri = Path(uri).expanduser().resolve().as_uri()
    return ObjectStoragePath(uri, conn_id=settings.aws_conn_id)


def run_of(settings: Settings, run_id: str) -> Run:
    """The run's paths and job names, from the settings and the run id (the one place they come from)."""
    return Run(run_id, storage_path(settings.storage_root, settings), settings.job_name_prefix)


def start(settings: Settings, run_id: str) -> dict:
    """Check the settings and fix the run's folder; fail fast on what cannot run."""
    problems = settings_problems(settings)
    if problems:
        raise AirflowException("cannot start: " + "; ".join(problems))
    from video_recommender.storage import StorageError, write_atomically

    run = run_of(settings, run_id)
    root = run.paths.root
    log.info("run %s: backend %s, outputs under %s", run_id, settings.backend, root)
    try:  # the run's first file: a root that cannot be written fails here, not after all the reading
        record = {"run_id": run_id, "backend": settings.backend, "data_steps": settings.data_steps}
        write_atomically(root / "run.json", (json.dumps(record, sort_keys=True) + "\n").encode())
    except StorageError as exc:
        raise AirflowException(
            f"cannot start: RECOMMENDER_STORAGE_ROOT={settings.storage_root!r} is not writable: {exc}"
        ) from exc
    if settings.data_steps == "processing":  # the Processing jobs import the code from here
        from video_recommender import bundle

        write_atomically(root / "code" / "video_recommender.zip", bundle.package_zip())
        write_atomically(root / "code" / "processing_entry.py", bundle.entry_script())
    return {"run_id": run_id, "run_root": uri(root), "backend": settings.backend}


def settings_problems(settings: Settings) -> list[str]:
    """What keeps the settings from working with their backend (nothing is called to find out)."""
    problems = []
    if settings.backend == "sagemaker":
        if not settings.storage_root.startswith("s3://"):
            problems.append(
                f"RECOMMENDER_STORAGE_ROOT={settings.storage_root!r}: SageMaker jobs read and write S3, "
                "so the sagemaker backend needs an s3://bucket/prefix root"
            )
        if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", settings.sagemaker_role_arn):
            problems.append(
                f"RECOMMENDER_SAGEMAKER_ROLE_ARN={settings.sagemaker_role_arn!r}: expected the ARN of the role "
                "SageMaker jobs run as (arn:aws:iam::<account>:role/<name>)"
            )
        try:
            requests.fm_image_uri(settings.region)
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def preprocess(settings: Settings, run_id: str, params: dict[str, Any], triggered_by: str | None = None) -> dict:
    """Read the reviews: the ``input_uri`` param, else the reviews file whose asset event started the run, else generated."""
    from video_recommender import steps

    paths = run_of(settings, run_id).paths
    input_uri = _input_uri(params, triggered_by)
    generated = None
    if input_uri:
        input_path = storage_path(input_uri, settings)
    else:
        generated = steps.generate_input(paths, _scale(params, settings), _seed(params, settings))
        input_path = paths.input
    try:
        summary = steps.preprocess_step(input_path, paths, seed=_seed(params, settings))
    except (ValueError, FileNotFoundError) as exc:  # bad input: say which file and why, no traceback hunt
        raise AirflowException(str(exc)) from exc
    return {**summary, "synthetic": generated}


def prepare(settings: Settings, run_id: str, params: dict[str, Any]) -> dict:
    from video_recommender import steps

    return steps.prepare_step(run_of(settings, run_id).paths, _predictor_type(params), settings.recordio_shards)


def _input_uri(params: dict[str, Any], triggered_by: str | None) -> str:
    return (params.get("input_uri") or "").strip() or (triggered_by or "")


def _scale(params: dict[str, Any], settings: Settings) -> float:
    return float(params.get("synthetic_scale", settings.synthetic_scale))


def _seed(params: dict[str, Any], settings: Settings) -> int:
    return int(params.get("seed", settings.seed))


def _predictor_type(params: dict[str, Any]) -> str:
    return params.get("predictor_type", "regressor")


def prepared_of(run: Run) -> dict:
    """prepare's summary with the channel URIs, read from the run folder (both data-step modes write it)."""
    from video_recommender import steps

    return steps.prepared_summary(run.paths)


def choose_training(ti: Any, params: dict[str, Any]) -> str:
    """The branch to take, kept as the XCom ``branch`` for ``trained``.

    A branch task's return value is not pushed (Airflow skips the other branch by
    raising), so the choice is pushed explicitly.
    """
    branch = TUNE_TASK if params["run_hyperparameter_opt"] else TRAIN_TASK
    ti.xcom_push(key=BRANCH_KEY, value=branch)
    return branch


def trained(ti: Any) -> tuple[dict | None, dict | None]:
    """(train's, tune's) result, pulled from the branch that ran only.

    Which one ran is what ``choose_training`` chose, not the params now: a run without
    ``run_hyperparameter_opt`` in its conf takes the default from the environment, which
    may have changed by the time a task of it is cleared. Pulling the skipped branch's
    XCom would log "XCom not found" at error level.
    """
    branch = ti.xcom_pull(task_ids=BRANCH_TASK, key=BRANCH_KEY)
    if branch == TUNE_TASK:
        return None, ti.xcom_pull(task_ids=TUNE_TASK)
    if branch == TRAIN_TASK:
        return ti.xcom_pull(task_ids=TRAIN_TASK), None
    raise AirflowException(f"{BRANCH_TASK} chose {branch!r}, neither {TRAIN_TASK!r} nor {TUNE_TASK!r}")


# -- requests: pure functions of the run and what ran before -------------------------------


def processing_request(
    run: Run, params: dict[str, Any], settings: Settings, step: str, triggered_by: str | None = None
) -> dict:
    """CreateProcessingJob for preprocess or prepare (``RECOMMENDER_DATA_STEPS=processing``)."""
    input_uri = _input_uri(params, triggered_by)
    reads_reviews = step == "preprocess"
    try:
        return requests.processing_request(
            settings,
            name=getattr(run.names, step),
            step=step,
            run_root=uri(run.paths.root),
            run_id=run.run_id,
            input_uri=uri(storage_path(input_uri, settings)) if reads_reviews and input_uri else None,
            generate_scale=_scale(params, settings) if reads_reviews and not input_uri else None,
            seed=_seed(params, settings),
            predictor_type=_predictor_type(params),
        )
    except ValueError as exc:
        raise AirflowException(str(exc)) from exc


def training_request(run: Run, prepared: dict, settings: Settings) -> dict:
    return requests.training_request(
        settings,
        name=run.names.train,
        train_uri=prepared["train_uri"],
        test_uri=prepared["validate_uri"],  # FM's `test` channel scores validation data; test stays unseen
        output_uri=uri(run.paths.models),
        feature_dim=prepared["feature_dim"],
        run_id=run.run_id,
        hyperparameters={"predictor_type": prepared["predictor_type"]},
    )


def tuning_request(run: Run, prepared: dict, settings: Settings) -> dict:
    return requests.tuning_request(
        settings,
        name=run.names.tune,
        train_uri=prepared["train_uri"],
        test_uri=prepared["validate_uri"],  # the objective test:rmse is measured on validation data
        output_uri=uri(run.paths.models),
        feature_dim=prepared["feature_dim"],
        run_id=run.run_id,
        predictor_type=prepared["predictor_type"],
    )


def model_artifact(training: dict | None, tuning: dict | None) -> str:
    """The model to score with: the training job's, or the tuning job's best training job's."""
    if training:
        return training["Training"]["ModelArtifacts"]["S3ModelArtifacts"]
    if tuning:
        best = tuning["Tuning"]["BestTrainingJob"]["TrainingJobName"]
        output = tuning["Tuning"]["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{output}/{best}/output/model.tar.gz"
    raise AirflowException("neither the training nor the tuning branch produced a model")


def transform_request(run: Run, prepared: dict, training: dict | None, tuning: dict | None, settings: Settings) -> dict:
    """``{"Model": CreateModel, "Transform": CreateTransformJob}`` for the model of the branch that ran."""
    return {
        "Model": requests.model_request(settings, run.names.model, model_artifact(training, tuning), run.run_id),
        "Transform": requests.transform_request(
            settings,
            name=run.names.transform,
            model_name=run.names.model,
            input_uri=prepared["test_uri"],
            output_uri=uri(run.paths.transform),
            run_id=run.run_id,
        ),
    }


def model_cleanup_request(run: Run) -> dict:
    """What ``delete_model`` deletes: every try's Model named after the run's transform model."""
    return {"Model": {"ModelName": run.names.model}}


# -- the same requests, built from a job task's context when it runs -----------------------


def preprocess_job_request(context: Any, settings: Settings) -> dict:
    triggered_by = triggering_input(context.get("triggering_asset_events"))
    return processing_request(
        run_of(settings, context["run_id"]), context["params"], settings, "preprocess", triggered_by
    )


def prepare_job_request(context: Any, settings: Settings) -> dict:
    return processing_request(run_of(settings, context["run_id"]), context["params"], settings, "prepare")


def training_job_request(context: Any, settings: Settings) -> dict:
    run = run_of(settings, context["run_id"])
    return training_request(run, prepared_of(run), settings)


def tuning_job_request(context: Any, settings: Settings) -> dict:
    run = run_of(settings, context["run_id"])
    return tuning_request(run, prepared_of(run), settings)


def transform_job_request(context: Any, settings: Settings) -> dict:
    run = run_of(settings, context["run_id"])
    return transform_request(run, prepared_of(run), *trained(context["ti"]), settings)


def model_cleanup_job_request(context: Any, settings: Settings) -> dict:
    return model_cleanup_request(run_of(settings, context["run_id"]))


# -- recommend and evaluate ---------------------------------------------------------------


def recommend(settings: Settings, run_id: str, training: dict | None, tuning: dict | None) -> dict:
    """Top-N per customer from the model the transform scores with."""
    from video_recommender.recommend import recommend_step

    model_uri = model_artifact(training, tuning)
    summary = recommend_step(run_of(settings, run_id).paths, storage_path(model_uri, settings), seed=settings.seed)
    return {**summary, "model_uri": model_uri}


def recommendations_event(result: dict) -> dict:
    """The recommendations asset event's extra: where this run's recommendations are."""
    return {k: result[k] for k in ("recommendations_uri", "recommendations_jsonl_uri", "ranking_uri", "model_uri")}


def model_event(metrics: dict) -> dict:
    """The model asset event's extra: the evaluated model, its job and test metrics, the report."""
    keep = ("training_job", "tuning_job", "test_rmse", "naive_rmse", "test_f1", "test_roc_auc", "predictor_type")
    return {
        "model_uri": metrics["model_uri"],
        **{k: metrics[k] for k in keep if metrics.get(k) is not None},
        "metrics_uri": metrics["metrics_uri"],
        "report_uri": metrics["report_uri"],
    }


def evaluate(settings: Settings, run_id: str, training: dict | None, tuning: dict | None) -> dict:
    from video_recommender.evaluate import evaluate_step

    run = run_of(settings, run_id)
    if training:
        job = training["Training"]
        model = {
            "training_job": job["TrainingJobName"],
            "hyperparameters": job.get("HyperParameters"),
            "validation_metrics": {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])},
        }
    elif tuning:
        best = tuning["Tuning"]["BestTrainingJob"]
        objective = best["FinalHyperParameterTuningJobObjectiveMetric"]
        model = {
            "training_job": best["TrainingJobName"],
            "tuning_job": tuning["Tuning"]["HyperParameterTuningJobName"],
            "hyperparameters": {
                **tuning["Tuning"]["TrainingJobDefinition"].get("StaticHyperParameters", {}),
                **best["TunedHyperParameters"],
            },
            "validation_metrics": {objective["MetricName"]: objective["Value"]},
            "training_jobs": tuning["Tuning"]["TrainingJobStatusCounters"],
        }
    else:
        model = {}
    model["model_uri"] = model_artifact(training, tuning)
    curve = None
    if model.get("training_job"):
        from video_recommender.training_logs import learning_curve

        lines = training_log_lines(model["training_job"], run, settings)
        curve = learning_curve(lines) if lines else None
    trials = None
    if tuning:
        from video_recommender.tuning_trials import trials_for_report

        job = tuning["Tuning"]
        summaries = tuning_trial_summaries(job["HyperParameterTuningJobName"], run, settings)
        trials = trials_for_report(summaries, job["HyperParameterTuningJobConfig"]) if summaries else None
    return evaluate_step(run.paths, prepared_of(run)["predictor_type"], model, curve, tuning_trials=trials)


def tuning_trial_summaries(tuning_job: str, run: Run, settings: Settings) -> list[dict]:
    """The tuning job's trials as ListTrainingJobsForHyperParameterTuningJob lists them (the local engine's copy locally).

    For the report's tuning charts only: a listing that cannot be read is a warning and
    an empty list, never a failed evaluation.
    """
    from video_recommender.tuning_trials import list_training_job_summaries, load_summaries

    try:
        if settings.backend == "local":
            path = run.local_sagemaker.tuning_trials(tuning_job)
            return load_summaries(path) if path.exists() else []
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        client = SageMakerHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region).conn
        return list_training_job_summaries(client, tuning_job)
    except Exception as exc:  # the report goes without its tuning charts
        log.warning("no tuning charts for %s: cannot list its training jobs (%s)", tuning_job, exc)
        return []


TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def training_log_lines(job_name: str, run: Run, settings: Settings) -> list[str]:
    """The training job's log: CloudWatch's streams ``<job>/…`` on SageMaker, the local engine's copy locally.

    For the report's learning curve only: a log that cannot be read (not there yet,
    access denied) is a warning and an empty list, never a failed evaluation.
    """
    try:
        if settings.backend == "local":
            path = run.local_sagemaker.training_log(job_name)
            return path.read_text().splitlines() if path.exists() else []
        from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

        hook = AwsLogsHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region)
        streams = hook.conn.describe_log_streams(logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{job_name}/")
        lines = []
        for stream in sorted(s["logStreamName"] for s in streams.get("logStreams", [])):
            token = None
            while True:  # GetLogEvents pages until the forward token repeats
                page = hook.conn.get_log_events(
                    logGroupName=TRAINING_LOG_GROUP, logStreamName=stream, startFromHead=True,
                    **({"nextToken": token} if token else {}),
                )  # fmt: skip
                lines.extend(event["message"] for event in page["events"])
                if page.get("nextForwardToken") in (None, token):
                    break
                token = page["nextForwardToken"]
        return lines
    except Exception as exc:  # the report goes without its curve
        log.warning("no learning curve for %s: cannot read its log (%s)", job_name, exc)
        return []
