"""``python -m video_recommender.engine``: hand-written boto3 requests run outside Airflow."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from fm_jobs import training_request

REPO = Path(__file__).resolve().parent.parent
PREFIX = r"\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d INFO \d+\] "  # CloudWatch's view of FM's log lines


def engine(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "video_recommender.engine", *args],
        capture_output=True, text=True, cwd=cwd, env={"PYTHONPATH": str(REPO / "plugins"), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )  # fmt: skip


def hand_written_training_request(base: Path) -> dict:
    """As a user would write it for boto3's create_training_job, with file:// URIs for S3."""
    return {
        "TrainingJobName": "fm-by-hand",
        "AlgorithmSpecification": {"TrainingImage": "382416733822.dkr.ecr.us-east-1.amazonaws.com/factorization-machines:1",
                                   "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
        "HyperParameters": {"feature_dim": "500", "num_factors": "8", "predictor_type": "regressor", "epochs": "4",
                            "mini_batch_size": "100", "linear_lr": "0.01", "factors_lr": "0.01"},
        "InputDataConfig": [
            {"ChannelName": name, "ContentType": "application/x-recordio-protobuf",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": (base / name).as_uri() + "/"}}}
            for name in ("train", "test")
        ],
        "OutputDataConfig": {"S3OutputPath": (base / "models").as_uri()},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.c5.xlarge", "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }  # fmt: skip


def test_train_then_transform_from_request_files(job_dir: Path) -> None:
    (job_dir / "train.json").write_text(json.dumps(hand_written_training_request(job_dir), indent=2))
    done = engine("train", "--request", "train.json", "--describe", "describe.json", cwd=job_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(re.match(PREFIX, line) for line in lines)
    epochs = [line for line in lines if re.search(r"#quality_metric: host=algo-1, epoch=\d+, train rmse <loss>=", line)]
    assert len(epochs) == 4
    assert sum("#quality_metric: host=algo-1, test rmse <loss>=" in line for line in lines) == 1
    artifact = job_dir / "models" / "fm-by-hand" / "output" / "model.tar.gz"  # where SageMaker writes it
    assert artifact.is_file() and str(artifact) in done.stderr
    assert json.loads((job_dir / "describe.json").read_text())["TrainingJobStatus"] == "Completed"

    transform = {
        "TransformJobName": "score-by-hand",
        "ModelName": "fm-by-hand",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{job_dir / 'test'}/"}},
            "ContentType": "application/x-recordio-protobuf",
            "SplitType": "RecordIO",
        },
        "TransformOutput": {"S3OutputPath": str(job_dir / "scores"), "Accept": "application/jsonlines",
                            "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1},
    }  # fmt: skip
    (job_dir / "transform.json").write_text(json.dumps(transform))
    done = engine("transform", "--request", "transform.json", "--model-data", artifact.as_uri(), cwd=job_dir)
    assert done.returncode == 0, done.stderr
    out = (job_dir / "scores" / "test.protobuf.out").read_text().splitlines()
    assert len(out) == 6_000 and all("score" in json.loads(line) for line in out)


def test_a_failed_job_exits_non_zero_with_its_reason(job_dir: Path) -> None:
    request = hand_written_training_request(job_dir)
    request["HyperParameters"]["factors_lr"] = "-1"
    (job_dir / "bad.json").write_text(json.dumps(request))
    done = engine("train", "--request", "bad.json", cwd=job_dir)
    assert done.returncode == 1
    assert "Failed: ClientError: Invalid value '-1' for hyperparameter 'factors_lr'" in done.stderr
    assert not (job_dir / "models").exists()


def test_unreadable_requests_are_refused_with_file_and_line(job_dir: Path) -> None:
    (job_dir / "broken.json").write_text('{\n  "TrainingJobName": "x",\n  oops\n}')
    done = engine("train", "--request", "broken.json", cwd=job_dir)
    assert done.returncode == 2 and "broken.json: line 3" in done.stderr
    request = hand_written_training_request(job_dir)
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = "s3://bucket/train/"
    (job_dir / "s3.json").write_text(json.dumps(request))
    done = engine("train", "--request", "s3.json", cwd=job_dir)
    assert done.returncode == 2 and "only file:// URIs or local paths" in done.stderr
    done = engine("transform", "--request", "s3.json", cwd=job_dir)
    assert done.returncode == 2 and "transform needs the model" in done.stderr
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = "file://train/"  # a host, not a path
    (job_dir / "host.json").write_text(json.dumps(request))
    done = engine("train", "--request", "host.json", cwd=job_dir)
    assert done.returncode == 2 and "needs an absolute path" in done.stderr
    request = hand_written_training_request(job_dir)
    request["OutputDataConfig"]["S3OutputPath"] = "s3://bucket/models"  # refused before training, not after
    (job_dir / "s3_out.json").write_text(json.dumps(request))
    done = engine("train", "--request", "s3_out.json", cwd=job_dir)
    assert done.returncode == 2 and "s3://bucket/models" in done.stderr and "#quality_metric" not in done.stdout


def test_tune_runs_a_tuning_request(job_dir: Path) -> None:
    definition = training_request(job_dir, epochs="3")
    static = {k: v for k, v in definition.pop("HyperParameters").items() if k != "factors_lr"}
    definition.pop("TrainingJobName")
    request = {
        "HyperParameterTuningJobName": "fm-tune-by-hand",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "test:rmse"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {"ContinuousParameterRanges": [
                {"Name": "factors_lr", "MinValue": "0.001", "MaxValue": "0.03", "ScalingType": "Logarithmic"}]},
        },
        "TrainingJobDefinition": {**definition, "StaticHyperParameters": static},
    }  # fmt: skip
    (job_dir / "tune.json").write_text(json.dumps(request))
    done = engine("tune", "--request", "tune.json", cwd=job_dir)
    assert done.returncode == 0, done.stderr
    assert "best training job fm-tune-by-hand-" in done.stderr
    assert len(list((job_dir / "models").glob("fm-tune-by-hand-*/output/model.tar.gz"))) == 3
