"""The DAG in sagemaker mode against a local moto server (S3, SageMaker, IAM, CloudWatch Logs).

The Amazon provider's operators talk to moto through the Airflow AWS connection's
endpoint_url; storage is s3:// through ObjectStoragePath. moto completes every job at
once (`keep_in_progress` makes one run for a number of polls) and runs no container:
`batch_transform_container` plays SageMaker's side of CreateTransformJob, writing the
`.out` files as AWS documents them, in each of the layouts the documentation allows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dag_runs
import pytest
from aws_calls import paused, recording
from dag_runs import load_dag
from iam_policy import allowed, load_policy, required_permissions

pytestmark = pytest.mark.e2e
BUCKET = "recsys-moto-test"
ROLE = "arn:aws:iam::123456789012:role/recsys-sagemaker"


@pytest.fixture
def sagemaker_env(moto_endpoint, monkeypatch, tmp_path):
    import boto3

    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {"conn_type": "aws", "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"}}
        ),
        "RECOMMENDER_BACKEND": "sagemaker",
        "RECOMMENDER_STORAGE_ROOT": f"s3://{BUCKET}/recsys",
        "RECOMMENDER_AWS_CONN_ID": "aws_default",
        "RECOMMENDER_SAGEMAKER_ROLE_ARN": ROLE,
        "RECOMMENDER_REGION": "us-east-1",
        "RECOMMENDER_CHECK_INTERVAL": "1",
        "RECOMMENDER_JOB_RETRIES": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # aws_default now points at this module's moto server: drop the object stores Airflow
    # cached per connection id (a store made earlier in this process, e.g. by another
    # module's ObjectStoragePath, would still reach real S3), as a fresh worker has none.
    from airflow.sdk.io import store

    monkeypatch.setattr(store, "_STORE_CACHE", {})
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    if BUCKET not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=BUCKET)
    training_container(monkeypatch)
    return s3


def training_container(monkeypatch) -> None:
    """SageMaker's side of CreateTrainingJob, in moto: the job's model where AWS documents it.

    A completed training job's artifact is ``<S3OutputPath>/<TrainingJobName>/output/model.tar.gz``
    (DescribeTrainingJob's ModelArtifacts.S3ModelArtifacts); a tuning job's best training
    job has its own (moto names that job "FakeTrainingJobName"). The model is FM's format
    with the request's feature_dim and num_factors, its weights random: these tests check
    the workflow's plumbing, not the model.
    """
    import numpy as np
    from moto.s3.models import s3_backends
    from moto.sagemaker import models

    from video_recommender.engine.artifacts import FMModel, write_model_tar_gz

    def put_model(account_id: str, output_path: str, job_name: str, hyper_parameters: dict) -> None:
        dim, factors = int(hyper_parameters["feature_dim"]), int(hyper_parameters.get("num_factors", 8))
        rng = np.random.default_rng(0)
        model = FMModel(np.array([3.5], np.float32), rng.normal(size=dim).astype(np.float32) * 0.1,
                        rng.normal(size=(dim, factors)).astype(np.float32) * 0.1,
                        hyper_parameters.get("predictor_type", "regressor"))  # fmt: skip
        bucket, _, prefix = output_path[5:].partition("/")
        key = f"{prefix.rstrip('/')}/{job_name}/output/model.tar.gz".lstrip("/")
        s3_backends[account_id]["aws"].put_object(bucket, key, write_model_tar_gz(model))

    training, tuning = (
        models.SageMakerModelBackend.create_training_job,
        models.SageMakerModelBackend.create_hyper_parameter_tuning_job,
    )

    def create_training_job(self, *args, **kwargs):
        job = training(self, *args, **kwargs)
        put_model(self.account_id, kwargs["output_data_config"]["S3OutputPath"], kwargs["training_job_name"],
                  kwargs["hyper_parameters"])  # fmt: skip
        return job

    def create_hyper_parameter_tuning_job(self, *args, **kwargs):
        arn = tuning(self, *args, **kwargs)
        definition = kwargs["training_job_definition"]
        best = self.hyper_parameter_tuning_jobs[kwargs["hyper_parameter_tuning_job_name"]].best_training_job
        put_model(self.account_id, definition["OutputDataConfig"]["S3OutputPath"], best["TrainingJobName"],
                  definition["StaticHyperParameters"])  # fmt: skip
        return arn

    monkeypatch.setattr(models.SageMakerModelBackend, "create_training_job", create_training_job)
    monkeypatch.setattr(
        models.SageMakerModelBackend, "create_hyper_parameter_tuning_job", create_hyper_parameter_tuning_job
    )


def assert_least_privilege(calls: list) -> list[tuple]:
    """Every call the DAG made is allowed by the MWAA policy of the project's CloudFormation template,
    and everything SageMaker does as the execution role for the jobs it started by that role's policy.

    Returns the execution role's needs, for tests that look at them.
    """
    values = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
              "DataBucketName": BUCKET, "DataPrefix": "recsys", "JobNamePrefix": "video-recsys",
              "SageMakerExecutionRole.Arn": ROLE}  # fmt: skip
    caller, role = load_policy("MwaaSageMakerPolicy", values), load_policy("SageMakerExecutionRole", values)
    denied = [
        (c.service, c.operation, need)
        for c in calls
        for need in required_permissions(c, "us-east-1", "123456789012")
        if not allowed(caller, *need)
    ]
    assert not denied, denied
    role_needs = [
        (c.operation, need)
        for c in calls
        for need in required_permissions(c, "us-east-1", "123456789012", principal="execution-role")
    ]
    denied = [(op, need) for op, need in role_needs if not allowed(role, *need)]
    assert not denied, denied
    return role_needs


# Where batch transform puts the output of input object <prefix>/<sub>/<name>: AWS documents
# "<name>.out in a corresponding subfolder" of S3OutputPath, and its example puts it under the
# input prefix's name (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformOutput.html);
# jobs are commonly seen writing <sub>/<name>.out. Each layout is a (prefix, key) -> relative path.
TRANSFORM_LAYOUTS = {
    "relative-path": lambda prefix, key: key[len(prefix) :] + ".out",
    "under-input-prefix": lambda prefix, key: f"{prefix.rstrip('/')}/{key.rsplit('/', 1)[-1]}.out",
    "under-prefix-name": lambda prefix, key: f"{prefix.rstrip('/').rsplit('/', 1)[-1]}/{key.rsplit('/', 1)[-1]}.out",
}


def batch_transform_container(monkeypatch, layout: str = "relative-path") -> list[str]:
    """SageMaker's side of CreateTransformJob, in moto: score every input object, write its .out.

    Runs inside moto when the job is created (not in the operator), reading and writing
    moto's S3 directly: one ``{"score": 4.0}`` line per record (FM's JSON Lines response,
    ``AssembleWith=Line``), for each object whose key starts with the input S3Uri.
    """
    from moto.s3.models import s3_backends
    from moto.sagemaker import models

    from video_recommender.data.recordio import read_sparse

    written: list[str] = []
    original = models.SageMakerModelBackend.create_transform_job

    def create_transform_job(self, *args, **kwargs):
        job = original(self, *args, **kwargs)
        s3 = s3_backends[self.account_id]["aws"]
        in_bucket, _, prefix = kwargs["transform_input"]["DataSource"]["S3DataSource"]["S3Uri"][5:].partition("/")
        out_bucket, _, out = kwargs["transform_output"]["S3OutputPath"][5:].partition("/")
        for key in sorted(k for k in s3.get_bucket(in_bucket).keys.keys() if k.startswith(prefix)):
            rows, _ = read_sparse(s3.get_object(in_bucket, key).value)
            target = f"{out.rstrip('/')}/{TRANSFORM_LAYOUTS[layout](prefix, key)}"
            s3.put_object(out_bucket, target, b'{"score": 4.0}\n' * rows.n_rows)
            written.append(target)
        return job

    monkeypatch.setattr(models.SageMakerModelBackend, "create_transform_job", create_transform_job)
    return written


IN_PROGRESS = {  # moto backend method -> the status key of its response
    "describe_training_job": "TrainingJobStatus",
    "describe_hyper_parameter_tuning_job": "HyperParameterTuningJobStatus",
}


def keep_in_progress(monkeypatch, polls: int) -> dict[str, int]:
    """Every training and tuning job reports InProgress for its first ``polls`` describes, then Completed."""
    from moto.sagemaker import models

    seen: dict[str, int] = {}
    for method, status in IN_PROGRESS.items():
        original = getattr(models.SageMakerModelBackend, method)

        def describe(self, *args, _original=original, _status=status, **kwargs):
            response = dict(_original(self, *args, **kwargs))
            name = (list(args) + list(kwargs.values()))[0]
            seen[name] = seen.get(name, 0) + 1
            if seen[name] <= polls and response[_status] == "Completed":
                response[_status] = "InProgress"
                response.pop("SecondaryStatus", None) and response.update(SecondaryStatus="Training")
            return response

        monkeypatch.setattr(models.SageMakerModelBackend, method, describe)
    return seen


def run_dag(conf: dict):
    assert type(load_dag().task_dict["train"]).__name__ == "SageMakerTrainingJob"
    return dag_runs.run_dag(conf)


@pytest.mark.parametrize("hpo", [False, True], ids=["training", "tuning"])
def test_both_branches_complete_against_moto(airflow_db, sagemaker_env, monkeypatch, hpo: bool) -> None:
    from video_recommender.layout import run_key

    s3 = sagemaker_env
    placed = batch_transform_container(monkeypatch)
    with recording() as calls:
        state, states, run_id = run_dag({"run_hyperparameter_opt": hpo, "synthetic_scale": 0.01})
    assert {("sagemaker", "CreateHyperParameterTuningJob" if hpo else "CreateTrainingJob")} <= {
        (c.service, c.operation) for c in calls
    }
    assert_least_privilege(calls)
    # evaluate lists the tuning job's trials for the report (moto answers 500: the report goes without them)
    listed = ("sagemaker", "ListTrainingJobsForHyperParameterTuningJob") in {(c.service, c.operation) for c in calls}
    assert listed == hpo
    assert state == "success", json.dumps(states)
    ran = {"tune"} if hpo else {"train"}
    skipped = {"train"} if hpo else {"tune"}
    assert all(states[t] == "skipped" for t in skipped)
    assert all(s == "success" for t, s in states.items() if t not in skipped), json.dumps(states)
    assert ran <= set(states)
    assert placed
    key = f"recsys/runs/{run_key(run_id)}/metrics.json"
    metrics = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert metrics["rows"]["scored"] == metrics["rows"]["test"] > 0
    assert metrics["test_rmse"] > 0  # every score is the placed 4.0


def test_a_failed_job_fails_the_try_with_its_reason_and_the_retry_gets_a_new_name(
    airflow_db, sagemaker_env, monkeypatch, capfd, moto_endpoint
) -> None:
    import boto3
    from moto.sagemaker import models

    original = models.FakeTrainingJob.__init__

    def init(self, *args, **kwargs):  # moto completes every job: make each first try fail
        original(self, *args, **kwargs)
        if self.training_job_name.endswith("-t1"):
            self.training_job_status = self.secondary_status = "Failed"
            self.failure_reason = "ClientError: planted by the test (first try)"

    monkeypatch.setattr(models.FakeTrainingJob, "__init__", init)
    monkeypatch.setenv("RECOMMENDER_JOB_RETRIES", "1")
    monkeypatch.setenv("RECOMMENDER_RETRY_DELAY_SECONDS", "0")
    batch_transform_container(monkeypatch)
    state, states, run_id = run_dag({"synthetic_scale": 0.01, "seed": 11})
    assert state == "success", json.dumps(states)
    out = capfd.readouterr()
    assert "planted by the test (first try)" in out.out + out.err  # the FailureReason reached the task log
    sagemaker = boto3.client("sagemaker", endpoint_url=moto_endpoint, region_name="us-east-1")
    jobs = {
        j["TrainingJobName"]: j["TrainingJobStatus"]
        for j in sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    }
    from video_recommender.sagemaker_requests import job_name

    base = job_name("video-recsys", "train", run_id)
    assert jobs[f"{base}-t1"] == "Failed" and jobs[f"{base}-t2"] == "Completed"
    # The worker computed the train task's extra links when the task ended: they name the try that ran.
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        links = {
            x.key: XComModel.deserialize_value(x)
            for x in session.scalars(XComModel.get_many(run_id=run_id, dag_ids="video_recommender", task_ids="train"))
            if x.key.startswith("_link_")
        }
    assert links == {
        "_link_SageMakerJobConsoleLink": f"https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs/{base}-t2",
        "_link_SageMakerJobLogsLink": "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        f"#logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FTrainingJobs$3FlogStreamNameFilter$3D{base}-t2",
    }


@pytest.mark.parametrize("hpo", [False, True], ids=["training", "tuning"])
def test_a_job_running_past_60_polls_is_waited_for_through_the_triggerer(
    airflow_db, sagemaker_env, monkeypatch, hpo: bool
) -> None:
    # The provider's default (max_attempts=60; 480 for tuning) fails the deferred task while
    # the job still runs; the wait derived from the job's limits lasts. dag.test runs the
    # trigger in-process, as MWAA's triggerer would: its polls use aiobotocore.
    # (The worker wait has no attempt limit; with print_log it describes the job every 30 s
    # whatever the interval, and its max_ingestion_time is checked in test_sagemaker_operators.)
    from video_recommender import sagemaker_operators
    from video_recommender.settings import Settings
    from video_recommender.waits import wait_budget

    monkeypatch.setenv("RECOMMENDER_DEFERRABLE", "true")
    monkeypatch.setenv("RECOMMENDER_CHECK_INTERVAL", "0.01")
    dag = load_dag()
    assert all(dag.task_dict[t].deferrable for t in ("train", "tune", "transform"))
    seen = keep_in_progress(monkeypatch, polls=75)
    batch_transform_container(monkeypatch)
    triggers: list = []
    original = sagemaker_operators.SageMakerJobTrigger.__init__

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        triggers.append(self)

    monkeypatch.setattr(sagemaker_operators.SageMakerJobTrigger, "__init__", record)
    with recording() as calls:
        state, states, _ = run_dag({"synthetic_scale": 0.01, "seed": 5, "run_hyperparameter_opt": hpo})
    assert state == "success", json.dumps(states)
    assert states["tune" if hpo else "train"] == states["transform"] == "success"
    operation = "DescribeHyperParameterTuningJob" if hpo else "DescribeTrainingJob"
    polls = [c for c in calls if c.operation == operation and c.asynchronous]
    assert len(polls) > 60, len(polls)
    assert max(seen.values()) > 75  # InProgress for 75 describes, then Completed
    # Each deferral waits exactly the budget of its own request, in the settings' region.
    settings = Settings.from_env()
    creates = {c.operation: c.params for c in calls}
    request = creates["CreateHyperParameterTuningJob" if hpo else "CreateTrainingJob"]
    kind = "tuning" if hpo else "training"
    budget = wait_budget(kind, request, settings.check_interval, settings.transform_max_runtime_seconds)
    job = next(t for t in triggers if t.job_type.lower() == kind)
    assert (job.attempts, job.region_name) == (budget.max_attempts, "us-east-1")


@pytest.mark.parametrize("layout", sorted(TRANSFORM_LAYOUTS))
def test_evaluate_finds_transform_output_in_every_documented_layout(
    airflow_db, sagemaker_env, monkeypatch, layout: str
) -> None:
    from video_recommender.layout import run_key

    written = batch_transform_container(monkeypatch, layout)
    state, states, run_id = run_dag({"synthetic_scale": 0.01, "seed": 3})
    assert state == "success", json.dumps(states)
    assert written and all(k.endswith(".protobuf.out") for k in written)
    key = f"recsys/runs/{run_key(run_id)}/metrics.json"
    metrics = json.loads(sagemaker_env.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert metrics["rows"]["scored"] == metrics["rows"]["test"] > 0


def test_the_teardown_deletes_the_runs_model(airflow_db, sagemaker_env, monkeypatch, moto_endpoint) -> None:
    import boto3

    sagemaker = boto3.client("sagemaker", endpoint_url=moto_endpoint, region_name="us-east-1")
    before = {m["ModelName"] for m in sagemaker.list_models()["Models"]}
    batch_transform_container(monkeypatch)
    with recording() as calls:
        state, states, run_id = run_dag({"synthetic_scale": 0.01, "seed": 13})
    assert state == "success" and states["delete_model"] == "success", json.dumps(states)
    from video_recommender.sagemaker_requests import job_name

    created = [c.params["ModelName"] for c in calls if c.operation == "CreateModel"]
    assert created == [f"{job_name('video-recsys', 'model', run_id)}-t1"]
    assert [c.params["ModelName"] for c in calls if c.operation == "DeleteModel"] == created
    assert {m["ModelName"] for m in sagemaker.list_models()["Models"]} == before


def test_the_teardown_deletes_the_model_when_the_transform_fails(
    airflow_db, sagemaker_env, monkeypatch, moto_endpoint
) -> None:
    import boto3
    from moto.sagemaker import models

    original = models.SageMakerModelBackend.create_transform_job

    def failing_transform(self, *args, **kwargs):
        job = original(self, *args, **kwargs)
        job.transform_job_status, job.failure_reason = "Failed", "ClientError: planted by the test"
        return job

    monkeypatch.setattr(models.SageMakerModelBackend, "create_transform_job", failing_transform)
    sagemaker = boto3.client("sagemaker", endpoint_url=moto_endpoint, region_name="us-east-1")
    before = {m["ModelName"] for m in sagemaker.list_models()["Models"]}
    with recording() as calls:
        state, states, _ = run_dag({"synthetic_scale": 0.01, "seed": 17})
    assert state == "failed" and states["transform"] == "failed", json.dumps(states)
    assert states["evaluate"] == "upstream_failed" and states["delete_model"] == "success", json.dumps(states)
    created = [c.params["ModelName"] for c in calls if c.operation == "CreateModel"]
    assert created and [c.params["ModelName"] for c in calls if c.operation == "DeleteModel"] == created
    assert {m["ModelName"] for m in sagemaker.list_models()["Models"]} == before


def play_processing_container(monkeypatch, s3, tmp_path) -> list[str]:
    """moto runs no container: after each Processing job 'completes', do what SageMaker does.

    Download the job's inputs to their LocalPaths (under a temporary /opt/ml/processing),
    run its ContainerEntrypoint + ContainerArguments there (a bare interpreter: the code
    comes from the uploaded bundle), then upload every output folder to its S3Uri.
    """
    import subprocess
    import sys

    from video_recommender import sagemaker_operators

    ran: list[str] = []
    original = sagemaker_operators.SageMakerProcessingJob.execute

    def local(path: str, base: Path) -> Path:
        return base / path.removeprefix("/opt/ml/processing/")

    def execute(self, context):
        result = original(self, context)
        request = self.config
        base = tmp_path / request["ProcessingJobName"]
        with paused():
            for item in request["ProcessingInputs"]:
                bucket, _, prefix = item["S3Input"]["S3Uri"].removeprefix("s3://").partition("/")
                for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
                    rel = obj["Key"][len(prefix) :].lstrip("/") or obj["Key"].rsplit("/", 1)[-1]
                    target = local(item["S3Input"]["LocalPath"], base) / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            app = request["AppSpecification"]
            command = [sys.executable] + [
                str(local(a, base)) if a.startswith("/opt/ml/processing/") else a
                for a in app["ContainerEntrypoint"][1:] + app["ContainerArguments"]
            ]
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=base)
            assert done.returncode == 0, done.stderr[-3000:]
            for item in request["ProcessingOutputConfig"]["Outputs"]:
                bucket, _, prefix = item["S3Output"]["S3Uri"].removeprefix("s3://").partition("/")
                folder = local(item["S3Output"]["LocalPath"], base)
                for f in sorted(p for p in folder.rglob("*") if p.is_file()):
                    s3.put_object(
                        Bucket=bucket, Key=f"{prefix}/{f.relative_to(folder).as_posix()}", Body=f.read_bytes()
                    )
        ran.append(request["ProcessingJobName"])
        return result

    monkeypatch.setattr(sagemaker_operators.SageMakerProcessingJob, "execute", execute)
    return ran


def test_data_steps_as_processing_jobs(airflow_db, sagemaker_env, monkeypatch, tmp_path) -> None:
    from video_recommender.layout import run_key

    monkeypatch.setenv("RECOMMENDER_DATA_STEPS", "processing")
    s3 = sagemaker_env
    ran = play_processing_container(monkeypatch, s3, tmp_path)
    batch_transform_container(monkeypatch)
    dag = load_dag()
    assert {type(dag.task_dict[t]).__name__ for t in ("preprocess", "prepare")} == {"SageMakerProcessingJob"}
    with recording() as calls:
        state, states, run_id = run_dag({"synthetic_scale": 0.01, "seed": 7})
    assert state == "success", json.dumps(states)
    assert [name.rsplit("-", 2)[0] for name in ran] == ["video-recsys-preprocess", "video-recsys-prepare"]
    assert ("sagemaker", "CreateProcessingJob") in {(c.service, c.operation) for c in calls}
    key = f"recsys/runs/{run_key(run_id)}/metrics.json"
    metrics = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert metrics["rows"]["scored"] == metrics["rows"]["test"] > 0
    role_needs = assert_least_privilege(calls)
    # The Processing jobs pull SageMaker's scikit-learn image as the execution role: allowed above.
    pulls = {need[1] for op, need in role_needs if op == "CreateProcessingJob" and need[0] == "ecr:BatchGetImage"}
    assert pulls == {"arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn"}
