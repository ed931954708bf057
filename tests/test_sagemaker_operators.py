"""What the sagemaker backend's operators add to the provider's: region, waits, stopping jobs.

Each check is against the provider's own classes (9.34.0), which miss it: their
trigger has no region and 60 (480 for tuning) attempts, their hook's S3 and logs
clients have no region, and nothing stops a job when its task is killed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from botocore.stub import Stubber

from video_recommender import tasks
from video_recommender.operators import job_operator
from video_recommender.sagemaker_operators import SageMakerJobTrigger
from video_recommender.sagemaker_requests import name_for_try
from video_recommender.settings import Settings
from video_recommender.waits import wait_budget

REGION = "eu-west-1"  # the settings' region; the connection says us-east-1
SETTINGS = Settings(
    storage_root="s3://b/p", backend="sagemaker", region=REGION, aws_conn_id="aws_default", deferrable=True,
    sagemaker_role_arn="arn:aws:iam::123456789012:role/sm", check_interval=30,
)  # fmt: skip
RUN = tasks.run_of(SETTINGS, "manual__2026-12-01T10:00:00+00:00")
PREPARED = {"train_uri": "s3://b/p/runs/r/recordio/train", "validate_uri": "s3://b/p/runs/r/recordio/validate",
            "test_uri": "s3://b/p/runs/r/recordio/test", "feature_dim": 9, "predictor_type": "regressor"}  # fmt: skip


@pytest.fixture(autouse=True)
def aws_connection(monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}})
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def configs() -> dict[str, dict]:
    training = {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/p/runs/r/models/x/output/model.tar.gz"}}
    return {
        "training": tasks.training_request(RUN, PREPARED, SETTINGS),
        "tuning": tasks.tuning_request(RUN, PREPARED, SETTINGS),
        "transform": tasks.transform_request(RUN, PREPARED, {"Training": training}, None, SETTINGS),
        "processing": tasks.processing_request(RUN, {}, SETTINGS, "prepare"),
    }


def operator(kind: str, config: dict | None = None) -> Any:
    return job_operator(kind, SETTINGS, task_id=kind, config=config or configs()[kind])


def test_the_hooks_s3_and_logs_clients_use_the_settings_region() -> None:
    provider = SageMakerHook(aws_conn_id="aws_default", region_name=REGION)
    assert provider.s3_hook.region_name == provider.logs_hook.region_name == "us-east-1"  # the provider's gap
    hook = operator("training").hook
    assert (hook.region_name, hook.s3_hook.region_name, hook.logs_hook.region_name) == (REGION, REGION, REGION)


JOB_TYPES = {"training": "Training", "tuning": "tuning", "transform": "Transform", "processing": "Processing"}


@pytest.mark.parametrize("kind", sorted(JOB_TYPES))
def test_the_deferral_waits_the_jobs_budget_in_the_settings_region(kind: str) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    op = operator(kind)
    op.config = name_for_try(op.config, 1)
    provider_trigger = SageMakerTrigger(
        job_name="video-recsys-x-t1",
        job_type=JOB_TYPES[kind],
        waiter_delay=30,
        waiter_max_attempts=60,
        aws_conn_id="aws_default",
    )  # fmt: skip — what the provider builds
    with pytest.raises(TaskDeferred) as deferred:
        op.defer(trigger=provider_trigger, method_name="execute_complete")
    trigger = deferred.value.trigger
    budget = wait_budget(kind, op.config.get("Transform", op.config), 30, SETTINGS.transform_max_runtime_seconds)
    assert (trigger.region_name, trigger.attempts, trigger.waiter_delay) == (REGION, budget.max_attempts, 30)
    assert budget.max_attempts > 60 and deferred.value.timeout.total_seconds() == budget.seconds
    classpath, kwargs = trigger.serialize()
    assert classpath == "video_recommender.sagemaker_operators.SageMakerJobTrigger"
    again = SageMakerJobTrigger(**kwargs)  # what the triggerer re-creates
    assert (again.region_name, again.attempts, again.job_name) == (REGION, budget.max_attempts, "video-recsys-x-t1")


STOPS = {
    "training": ("describe_training_job", "TrainingJobName", "TrainingJobStatus", "stop_training_job"),
    "tuning": ("describe_hyper_parameter_tuning_job", "HyperParameterTuningJobName", "HyperParameterTuningJobStatus",
               "stop_hyper_parameter_tuning_job"),
    "transform": ("describe_transform_job", "TransformJobName", "TransformJobStatus", "stop_transform_job"),
    "processing": ("describe_processing_job", "ProcessingJobName", "ProcessingJobStatus", "stop_processing_job"),
}  # fmt: skip


def _describe_response(kind: str, name: str, status: str) -> dict:
    """The smallest DescribeXxx response the service model accepts (botocore checks stub responses)."""
    now = "2026-12-01T10:00:00Z"
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:{kind}-job/{name}"
    spec = {"TrainingInputMode": "File", "TrainingImage": "i"}
    return {
        "training": {"TrainingJobName": name, "TrainingJobArn": arn, "TrainingJobStatus": status,
                     "SecondaryStatus": "Training", "ModelArtifacts": {"S3ModelArtifacts": "s3://b/m"},
                     "AlgorithmSpecification": spec, "ResourceConfig": {"VolumeSizeInGB": 1},
                     "StoppingCondition": {}, "CreationTime": now},
        "tuning": {"HyperParameterTuningJobName": name, "HyperParameterTuningJobArn": arn,
                   "HyperParameterTuningJobStatus": status, "CreationTime": now,
                   "HyperParameterTuningJobConfig": {"Strategy": "Bayesian", "ResourceLimits": {"MaxParallelTrainingJobs": 1}},
                   "TrainingJobStatusCounters": {}, "ObjectiveStatusCounters": {}},
        "transform": {"TransformJobName": name, "TransformJobArn": arn, "TransformJobStatus": status, "ModelName": "m",
                      "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/i"}}},
                      "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}, "CreationTime": now},
        "processing": {"ProcessingJobName": name, "ProcessingJobArn": arn, "ProcessingJobStatus": status,
                       "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                                 "VolumeSizeInGB": 1}},
                       "AppSpecification": {"ImageUri": "i"}, "CreationTime": now},
    }[kind]  # fmt: skip


def _stub(op: Any, kind: str, name: str, status: str, expect_stop: bool) -> Stubber:
    describe, key, _, stop = STOPS[kind]
    stubber = Stubber(op.hook.conn)
    stubber.add_response(describe, _describe_response(kind, name, status), {key: name})
    if expect_stop:
        stubber.add_response(stop, {}, {key: name})
    stubber.activate()
    return stubber


@pytest.mark.parametrize("kind", sorted(STOPS))
@pytest.mark.parametrize(("status", "stopped"), [("InProgress", True), ("Completed", False), ("Failed", False)])
def test_on_kill_stops_the_job_only_while_it_runs(kind: str, status: str, stopped: bool) -> None:
    from video_recommender.sagemaker_operators import job_name_of

    op = operator(kind)
    op.config = name_for_try(op.config, 1)  # what execute did before the kill
    name = job_name_of(kind, op.config)
    stubber = _stub(op, kind, name, status, stopped)
    op.on_kill()
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("kind", sorted(STOPS))
def test_a_retry_first_stops_the_previous_trys_job(kind: str, monkeypatch) -> None:
    from video_recommender.sagemaker_operators import job_name_of

    op = operator(kind)
    previous = job_name_of(kind, name_for_try(op.config, 1))
    stubber = _stub(op, kind, previous, "InProgress", True)
    submitted: dict = {}

    def provider_execute(self, context):  # the provider's execute: would call CreateXxx
        submitted.update(name=job_name_of(kind, self.config), attempts=getattr(self, "max_attempts", None),
                         seconds=self.max_ingestion_time)  # fmt: skip
        return {}

    base = next(c for c in type(op).__mro__ if c.__module__.startswith("airflow.providers"))  # the provider's operator
    monkeypatch.setattr(base, "execute", provider_execute)

    class TI:
        try_number = 2

    op.execute({"ti": TI()})
    stubber.assert_no_pending_responses()
    assert submitted["name"] == previous.removesuffix("-t1") + "-t2"
    budget = wait_budget(kind, op.config.get("Transform", op.config), 30, SETTINGS.transform_max_runtime_seconds)
    assert submitted["seconds"] == budget.seconds


def test_the_deferred_trigger_stops_its_job_when_the_task_is_killed(monkeypatch) -> None:
    calls: list[tuple[str, dict]] = []

    class Client:
        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return False

        async def stop_training_job(self, **kwargs):
            calls.append(("stop_training_job", kwargs))

    class Hook:
        async def get_async_conn(self):
            return Client()

    trigger = SageMakerJobTrigger(job_name="video-recsys-train-x-t1", job_type="Training", region_name=REGION)
    monkeypatch.setattr(trigger, "hook", lambda: Hook())
    asyncio.run(trigger.on_kill())
    assert calls == [("stop_training_job", {"TrainingJobName": "video-recsys-train-x-t1"})]


@pytest.mark.parametrize("kind", sorted(STOPS))
def test_a_worker_wait_that_gives_up_stops_the_job(kind: str, monkeypatch) -> None:
    from airflow.exceptions import AirflowException

    from video_recommender.sagemaker_operators import job_name_of

    op = operator(kind)
    name = job_name_of(kind, name_for_try(op.config, 1))
    stubber = _stub(op, kind, name, "InProgress", True)

    def provider_execute(self, context):  # the hook's wait: "took more than max_ingestion_time"
        raise AirflowException(f"SageMaker job took more than {self.max_ingestion_time} seconds")

    provider = next(c for c in type(op).__mro__ if c.__module__.startswith("airflow.providers"))
    monkeypatch.setattr(provider, "execute", provider_execute)

    class TI:
        try_number = 1

    with pytest.raises(AirflowException, match="took more than"):
        op.execute({"ti": TI()})
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("kind", sorted(STOPS))
@pytest.mark.parametrize("failure", ["timeout", "trigger error", "error event"])
def test_a_failed_or_timed_out_deferral_stops_the_job(kind: str, failure: str) -> None:
    """Airflow resumes a deferred task in resume_execution, and calls no on_kill on a timeout."""
    from airflow.exceptions import AirflowException
    from airflow.sdk.bases.operator import TriggerFailureReason
    from airflow.sdk.exceptions import TaskDeferralError, TaskDeferralTimeout

    from video_recommender.sagemaker_operators import job_name_of

    op = operator(kind)  # a fresh copy, as the resumed task is: base names
    name = job_name_of(kind, name_for_try(op.config, 2))
    stubber = _stub(op, kind, name, "InProgress", True)

    class TI:
        try_number = 2

    method, kwargs, raised = {
        "timeout": ("__fail__", {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, TaskDeferralTimeout),
        "trigger error": ("__fail__", {"error": "boom"}, TaskDeferralError),
        "error event": (
            "execute_complete",
            {"event": {"status": "error", "message": "Waiter error"}},
            (AirflowException, RuntimeError),  # the transform operator raises RuntimeError
        ),
    }[failure]
    with pytest.raises(raised):
        op.resume_execution(method, kwargs, {"ti": TI()})
    stubber.assert_no_pending_responses()
    # the task's extra links, computed when it ends, read the config: it names the try's job
    assert job_name_of(kind, op.config) == name


def test_a_describe_error_other_than_not_found_is_reported_and_nothing_raises() -> None:
    from video_recommender.sagemaker_operators import stop_job_if_running

    op = operator("transform")
    stubber = Stubber(op.hook.conn)
    stubber.add_client_error("describe_transform_job", "AccessDeniedException", "no", 400)
    stubber.add_response("describe_transform_job", _describe_response("transform", "t", "InProgress"))
    stubber.add_client_error("stop_transform_job", "ValidationException", "already completed", 400)
    stubber.activate()
    lines: list[str] = []

    class Log:
        def info(self, msg, *args):
            lines.append(msg % args)

        warning = info

    assert stop_job_if_running(op.hook.conn, "transform", "t", Log()) is False
    assert stop_job_if_running(op.hook.conn, "transform", "t", Log()) is False  # it ended in between
    text = "\n".join(lines)
    assert "cannot tell whether transform job t still runs (AccessDeniedException)" in text
    assert "could not stop transform job t" in text
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("kind", [*sorted(JOB_TYPES), "model_cleanup"])
def test_the_request_is_built_from_the_context_when_the_task_renders(kind: str) -> None:
    """Both backends' job operators build ``config`` at render time, so the provider's execute sees the request."""
    import dataclasses

    import jinja2

    built = configs().get(kind, {"Model": {"ModelName": "video-recsys-model-0123456789"}})
    built["Tags"] = [{"Key": "input", "Value": "s3://b/{{ 7 * 7 }}/{{ conn.aws_default.password }}"}]  # stays text
    seen: list[tuple] = []

    def build(context: dict, settings: Settings) -> dict:
        seen.append((context["run_id"], settings))
        return built

    for backend in ("sagemaker", "local"):
        settings = dataclasses.replace(SETTINGS, backend=backend)
        op = job_operator(kind, settings, task_id=kind, request=build)
        assert op.config == {}  # nothing is built at parse time
        op.render_template_fields({"run_id": RUN.run_id}, jinja2.Environment())
        assert op.config == built and seen[-1] == (RUN.run_id, settings)
