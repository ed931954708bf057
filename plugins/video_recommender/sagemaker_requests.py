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
import unicodedata
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


def folder_prefix(uri: str) -> str:
    """A folder's URI as an S3 key prefix, ending in ``/``.

    ``S3DataType=S3Prefix`` selects every object whose key *starts with* the prefix
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_S3DataSource.html), so
    ``.../recordio/test`` would also take ``.../recordio/test-old/...``; the slash keeps
    a channel to its own folder.
    """
    return uri.rstrip("/") + "/"


def is_model_of_try(name: str, base: str) -> bool:
    """Whether ``name`` is ``base`` as ``name_for_try`` names it for some try.

    The provider's transform operator renames a model that already exists to
    ``<name>-<10-digit epoch>`` (``action_if_model_exists="timestamp"``, its default).
    """
    return re.fullmatch(re.escape(base) + r"-t\d+(-\d{10})?", name) is not None


def _channel(name: str, uri: str) -> dict:
    return {
        "ChannelName": name,
        "ContentType": RECORDIO,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": folder_prefix(uri),
                "S3DataDistributionType": "ShardedByS3Key",
            }
        },
    }


_TAG_PUNCTUATION = set("_.:/=+-@ ")


def tag_value(text: str) -> str:
    """``text`` in SageMaker's tag charset, at most 256 characters.

    Tag keys and values must match ``^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$``
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_Tag.html): letters,
    separators, numbers and ``_.:/=+-@``. Anything else (a custom run id's ``#``, ``!``,
    ``~``...) becomes ``_``, or every Create call of the run fails on its tag.
    """
    return "".join(c if c in _TAG_PUNCTUATION or unicodedata.category(c)[0] in "LNZ" else "_" for c in text)[:256]


def _tags(settings: Settings, run_id: str) -> list[dict]:
    return [
        {"Key": "project", "Value": tag_value(settings.job_name_prefix)},
        {"Key": "airflow-run-id", "Value": tag_value(run_id)},
    ]


def _stopping_condition(settings: Settings) -> dict:
    """The training job's time caps; with managed spot also the wait for capacity.

    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html:
    MaxWaitTimeInSeconds (spot only) must be >= MaxRuntimeInSeconds.
    """
    condition = {"MaxRuntimeInSeconds": settings.training_max_runtime_seconds}
    if settings.managed_spot_training:
        condition["MaxWaitTimeInSeconds"] = settings.spot_max_wait_seconds
    return condition


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
        "ResourceConfig": {
            "InstanceCount": settings.training_instance_count,
            "InstanceType": settings.training_instance_type,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": _stopping_condition(settings),
        "EnableManagedSpotTraining": settings.managed_spot_training,
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
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": folder_prefix(input_uri)}},
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
) -> dict:
    """CreateHyperParameterTuningJob: Bayesian search over ``DEFAULT_TUNING_RANGES``.

    Its cost is capped by ``ResourceLimits``: the number of training jobs, how many run
    at once, and the whole tuning job's MaxRuntimeInSeconds (each training job keeps its
    own StoppingCondition).
    """
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
            "ResourceLimits": {
                "MaxNumberOfTrainingJobs": settings.tuning_max_jobs,
                "MaxParallelTrainingJobs": settings.tuning_max_parallel_jobs,
                "MaxRuntimeInSeconds": settings.tuning_max_runtime_seconds,
            },
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
    code = _processing_input("code", folder_prefix(f"{run_root}/code"), PROCESSING_CODE)
    if step == "preprocess":
        if (input_uri is None) == (generate_scale is None):
            raise ValueError("preprocess takes either an input_uri or a generate_scale")
        scheme = run_root.partition("://")[0]
        if input_uri is not None and input_uri.partition("://")[0] != scheme:
            raise ValueError(
                f"input_uri {input_uri!r}: a Processing job reads its input from the run's storage ({scheme}://...)"
            )
        inputs = [code] + ([_processing_input("input", input_uri, f"{PROCESSING_RUN}/input")] if input_uri else [])
        outputs = [_processing_output("preprocessed", run_root)]
        if generate_scale is not None:
            outputs.append(_processing_output("input", run_root))
        arguments = ["preprocess", "--root", PROCESSING_RUN, "--seed", str(seed)]
        arguments += ["--generate", repr(float(generate_scale))] if generate_scale is not None else []
    elif step == "prepare":
        preprocessed = folder_prefix(f"{run_root}/preprocessed")
        inputs = [code, _processing_input("preprocessed", preprocessed, f"{PROCESSING_RUN}/preprocessed")]
        outputs = [_processing_output("recordio", run_root)]
        arguments = ["prepare", "--root", PROCESSING_RUN, "--predictor-type", predictor_type]
        arguments += ["--shards", str(settings.recordio_shards)]
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
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.processing_max_runtime_seconds},
        "Tags": _tags(settings, run_id),
    }
