"""Pure functions that build the boto3 request dicts for SageMaker FM jobs.

This is the seam between backends: ``SageMakerTrainingOperator`` and the local
engine's operator receive the very same dicts. Nothing here calls AWS.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from pathlib import Path

from video_recommender.settings import Settings

RECORDIO = "application/x-recordio-protobuf"
MAX_JOB_NAME = 63
MAX_TUNING_JOB_NAME = 32
TRY_SUFFIX_ROOM = 4  # "-t" and up to two digits


@functools.cache
def _images() -> dict[str, dict[str, str]]:
    # From the SageMaker SDK's registry (scripts/refresh_sagemaker_images.py): the SDK
    # itself cannot be installed under MWAA 3.3.1's constraints.
    return json.loads((Path(__file__).with_name("sagemaker_images.json")).read_text())


def _image(kind: str, region: str) -> str:
    try:
        return _images()[kind][region]
    except KeyError:
        raise ValueError(
            f"no {kind} image known for region {region!r}; known: {', '.join(sorted(_images()[kind]))}"
        ) from None


def fm_image_uri(region: str) -> str:
    """The factorization-machines:1 image of a region."""
    return _image("factorization-machines", region)


def processing_image_uri(region: str) -> str:
    """The SageMaker scikit-learn image (pandas, numpy) that runs preprocess and prepare as Processing jobs."""
    return _image("sklearn-processing", region)


def job_name(prefix: str, kind: str, run_id: str, max_length: int = MAX_JOB_NAME) -> str:
    """A SageMaker job name unique per DAG run: ``<prefix>-<kind>-<hash of run id>``.

    ``name_for_try`` appends the try number when the job is submitted, so the name
    stays within ``max_length`` (63 for jobs, 32 for tuning jobs) with room for
    ``-t<try>``, and uses only ``[a-zA-Z0-9-]``, as SageMaker requires.
    """
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    stem = re.sub(r"[^a-zA-Z0-9-]+", "-", f"{prefix}-{kind}").strip("-")
    suffix = f"-{digest}"
    return stem[: max_length - len(suffix) - TRY_SUFFIX_ROOM].rstrip("-") + suffix


def name_for_try(config: dict, try_number: int) -> dict:
    """A copy of a request with every job and model name suffixed ``-t<try>``.

    The operators of both backends apply this when they run, so a retried task submits
    new names and never collides with the job of the failed try.
    """
    if not 1 <= try_number < 10 ** (TRY_SUFFIX_ROOM - 2):
        raise ValueError(f"try number {try_number} does not fit the names' suffix room")
    suffix = f"-t{try_number}"
    config = copy.deepcopy(config)
    for part in (config, config.get("Model"), config.get("Transform")):
        if isinstance(part, dict):
            for key in (
                "TrainingJobName",
                "HyperParameterTuningJobName",
                "TransformJobName",
                "ModelName",
                "ProcessingJobName",
            ):
                if key in part:
                    part[key] = f"{part[key]}{suffix}"
    return config


def _channel(name: str, uri: str) -> dict:
    return {
        "ChannelName": name,
        "ContentType": RECORDIO,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "ShardedByS3Key"}
        },
    }


def _tags(settings: Settings, run_id: str) -> list[dict]:
    return [
        {"Key": "project", "Value": settings.job_name_prefix},
        {"Key": "airflow-run-id", "Value": run_id[:256]},
    ]


def training_request(
    settings: Settings,
    name: str,
    train_uri: str,
    test_uri: str,
    output_uri: str,
    feature_dim: int,
    run_id: str,
    hyperparameters: dict[str, str] | None = None,
) -> dict:
    """CreateTrainingJob for FM on RecordIO channels ``train`` and ``test``."""
    hp = {**settings.hyperparameters, **(hyperparameters or {}), "feature_dim": str(feature_dim)}
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": fm_image_uri(settings.region), "TrainingInputMode": "File"},
        "RoleArn": settings.sagemaker_role_arn,
        "HyperParameters": {k: str(v) for k, v in hp.items()},
        "InputDataConfig": [_channel("train", train_uri), _channel("test", test_uri)],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": settings.training_instance_type, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "Tags": _tags(settings, run_id),
    }


def model_request(settings: Settings, name: str, model_data_url: str, run_id: str) -> dict:
    """CreateModel for an FM artifact."""
    return {
        "ModelName": name,
        "PrimaryContainer": {"Image": fm_image_uri(settings.region), "ModelDataUrl": model_data_url},
        "ExecutionRoleArn": settings.sagemaker_role_arn,
        "Tags": _tags(settings, run_id),
    }


def transform_request(
    settings: Settings, name: str, model_name: str, input_uri: str, output_uri: str, run_id: str
) -> dict:
    """CreateTransformJob: RecordIO in, one JSON line per record out, per input object."""
    return {
        "TransformJobName": name,
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": RECORDIO,
            "SplitType": "RecordIO",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": "application/jsonlines", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": settings.transform_instance_type, "InstanceCount": 1},
        "Tags": _tags(settings, run_id),
    }


# Our search space around DEFAULT_HYPERPARAMETERS: the learning rates are Adam step sizes
# (real FM's optimiser), so each bound stays in the region where real FM trains well;
# every corner of the box is trained in tests/test_defaults_train_well.py. Bounds are
# strings, as the API takes them.
DEFAULT_TUNING_RANGES: dict = {
    "ContinuousParameterRanges": [
        {"Name": "factors_lr", "MinValue": "0.0006", "MaxValue": "0.0017", "ScalingType": "Logarithmic"},
        {"Name": "factors_wd", "MinValue": "0.0004", "MaxValue": "0.001", "ScalingType": "Logarithmic"},
    ],
    "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "10", "MaxValue": "80", "ScalingType": "Linear"}],
    "CategoricalParameterRanges": [],
}


# The objective per predictor type: RMSE for ratings; cross-entropy for likes (smoother
# than accuracy, so the Bayesian search learns more from each job).
TUNING_OBJECTIVES = {
    "regressor": {"Type": "Minimize", "MetricName": "test:rmse"},
    "binary_classifier": {"Type": "Minimize", "MetricName": "test:binary_classification_cross_entropy"},
}


def tuning_request(
    settings: Settings,
    name: str,
    train_uri: str,
    test_uri: str,
    output_uri: str,
    feature_dim: int,
    run_id: str,
    predictor_type: str = "regressor",
    max_jobs: int = 16,
    max_parallel: int = 2,
) -> dict:
    """CreateHyperParameterTuningJob: Bayesian search over ``DEFAULT_TUNING_RANGES``."""
    training = training_request(
        settings, name, train_uri, test_uri, output_uri, feature_dim, run_id, {"predictor_type": predictor_type}
    )
    tuned = {r["Name"] for group in DEFAULT_TUNING_RANGES.values() for r in group}
    static = {k: v for k, v in training["HyperParameters"].items() if k not in tuned}
    definition = {k: v for k, v in training.items() if k not in ("TrainingJobName", "HyperParameters", "Tags")}
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": TUNING_OBJECTIVES[predictor_type],
            "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": max_parallel},
            "ParameterRanges": DEFAULT_TUNING_RANGES,
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {**definition, "StaticHyperParameters": static},
        "Tags": _tags(settings, run_id),
    }


# Processing jobs: where SageMaker puts the code and the run folder inside the container.
PROCESSING_CODE = "/opt/ml/processing/code"
PROCESSING_RUN = "/opt/ml/processing/run"


def _processing_input(name: str, s3_uri: str, local: str) -> dict:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": s3_uri,
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def _processing_output(name: str, run_root: str) -> dict:
    return {
        "OutputName": name,
        "S3Output": {
            "S3Uri": f"{run_root}/{name}",
            "LocalPath": f"{PROCESSING_RUN}/{name}",
            "S3UploadMode": "EndOfJob",
        },
    }


def processing_request(
    settings: Settings,
    name: str,
    step: str,
    run_root: str,
    run_id: str,
    *,
    input_uri: str | None = None,
    generate_scale: float | None = None,
    seed: int = 42,
    predictor_type: str = "regressor",
) -> dict:
    """CreateProcessingJob running ``step`` (preprocess or prepare) with processing_entry.py.

    The code (the package zipped, and the entry script) is under ``<run_root>/code``; the
    job reads and writes the run folder's ``input``, ``preprocessed`` and ``recordio``.
    """
    code = _processing_input("code", f"{run_root}/code", PROCESSING_CODE)
    if step == "preprocess":
        if (input_uri is None) == (generate_scale is None):
            raise ValueError("preprocess takes either an input_uri or a generate_scale")
        if input_uri is not None and not input_uri.startswith("s3://"):
            raise ValueError(f"input_uri {input_uri!r}: a Processing job reads its input from S3 (s3://...)")
        inputs = [code] + ([_processing_input("input", input_uri, f"{PROCESSING_RUN}/input")] if input_uri else [])
        outputs = [_processing_output("preprocessed", run_root)]
        if generate_scale is not None:
            outputs.append(_processing_output("input", run_root))
        arguments = ["preprocess", "--root", PROCESSING_RUN, "--seed", str(seed)]
        arguments += ["--generate", repr(float(generate_scale))] if generate_scale is not None else []
    elif step == "prepare":
        inputs = [code, _processing_input("preprocessed", f"{run_root}/preprocessed", f"{PROCESSING_RUN}/preprocessed")]
        outputs = [_processing_output("recordio", run_root)]
        arguments = ["prepare", "--root", PROCESSING_RUN, "--predictor-type", predictor_type]
    else:
        raise ValueError(f"unknown processing step {step!r}")
    return {
        "ProcessingJobName": name,
        "RoleArn": settings.sagemaker_role_arn,
        "AppSpecification": {
            "ImageUri": processing_image_uri(settings.region),
            "ContainerEntrypoint": ["python3", f"{PROCESSING_CODE}/processing_entry.py"],
            "ContainerArguments": arguments,
        },
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": outputs},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": settings.processing_instance_type,
                "VolumeSizeInGB": 30,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 7200},
        "Tags": _tags(settings, run_id),
    }
