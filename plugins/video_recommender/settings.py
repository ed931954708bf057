"""One typed settings object for the workflow, read from the environment.

Everything that differs between a laptop and MWAA lives here: where data goes
(``RECOMMENDER_STORAGE_ROOT``: ``file://`` locally, ``s3://bucket/prefix`` on
MWAA), which backend executes the SageMaker requests, the role and instance
types. Reading it costs nothing (no network, no AWS), so the DAG may do so at
parse time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

BACKENDS = ("local", "sagemaker")
DATA_STEPS = ("worker", "processing")  # where preprocess and prepare run

# Our defaults, for real FM's optimiser (MXNet's lazy Adam: the rates are Adam step
# sizes, each touched value moves about lr per mini-batch). Chosen by a grid on the
# validation split only, of MovieLens-100K and of the generated demo data, through this
# workflow's pre-processing (benchmarks/choose_defaults.py; docs/local-engine.md). Everything not listed keeps FM's own default (bias_lr 0.1,
# bias_wd 0.01, the init sigmas).
DEFAULT_HYPERPARAMETERS: dict[str, str] = {
    "predictor_type": "regressor",
    "num_factors": "64",
    "epochs": "47",
    "mini_batch_size": "200",
    "linear_lr": "0.003",
    "linear_wd": "0.0003",
    "factors_lr": "0.001",
    "factors_wd": "0.0007",
}


class SettingsError(ValueError):
    """A setting has a value the workflow cannot use."""


def _flag(value: str | None, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={value!r}: expected true or false")


def _with_airflow_options(environ: Mapping[str, str]) -> dict[str, str]:
    """``RECOMMENDER_X`` may also come as Airflow option ``recommender.x``.

    MWAA sets only Airflow configuration options (``AirflowConfigurationOptions``), which
    reach the processes as ``AIRFLOW__RECOMMENDER__X``; a plain ``RECOMMENDER_X`` wins.
    """
    merged = dict(environ)
    for key, value in environ.items():
        if key.startswith("AIRFLOW__RECOMMENDER__"):
            merged.setdefault("RECOMMENDER_" + key.removeprefix("AIRFLOW__RECOMMENDER__"), value)
    return merged


def default_storage_root(environ: Mapping[str, str]) -> str:
    home = environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(home, "recommender-data").resolve().as_uri()


@dataclass(frozen=True)
class Settings:
    storage_root: str
    backend: str = "local"
    run_hyperparameter_opt: bool = False
    aws_conn_id: str | None = None
    region: str = "us-east-1"
    sagemaker_role_arn: str = ""
    job_name_prefix: str = "video-recsys"
    training_instance_type: str = "ml.c5.4xlarge"
    training_instance_count: int = 1
    train_shards: int = 0  # RecordIO files of train and validate; 0: one per training instance
    transform_instance_type: str = "ml.c5.xlarge"
    data_steps: str = "worker"
    processing_instance_type: str = "ml.m5.xlarge"
    check_interval: float = 30  # seconds between DescribeXxxJob polls (fractions for tests)
    deferrable: bool = False
    job_retries: int = 1
    retry_delay_seconds: int = 60
    # Cost caps (docs/sagemaker.md "Cost"). SageMaker stops a job at its MaxRuntimeInSeconds; the
    # waits last as long as these allow (video_recommender.waits) and no longer.
    training_max_runtime_seconds: int = 3 * 3600
    processing_max_runtime_seconds: int = 2 * 3600
    transform_max_runtime_seconds: int = 2 * 3600  # CreateTransformJob has no limit: ours, then StopTransformJob
    tuning_max_runtime_seconds: int = 8 * 3600  # the whole tuning job (ResourceLimits.MaxRuntimeInSeconds)
    tuning_max_jobs: int = 16
    tuning_max_parallel_jobs: int = 2
    managed_spot_training: bool = False
    spot_max_wait_seconds: int = 6 * 3600  # runtime plus waiting for spot capacity (>= the max runtime)
    synthetic_scale: float = 0.05
    seed: int = 42
    # An Asset URI (e.g. s3://bucket/incoming/reviews.tsv.gz): the DAG runs whenever an
    # event for it is recorded, on that file; empty: manual runs only.
    input_asset_uri: str = ""
    hyperparameters: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_HYPERPARAMETERS))

    @property
    def recordio_shards(self) -> int:
        """Files per train / validate channel: ``RECOMMENDER_TRAIN_SHARDS``, else one per training instance."""
        return self.train_shards or self.training_instance_count

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _with_airflow_options(os.environ if environ is None else environ)
        backend = env.get("RECOMMENDER_BACKEND", "local").strip().lower()
        if backend not in BACKENDS:
            raise SettingsError(f"RECOMMENDER_BACKEND={backend!r}: expected one of {', '.join(BACKENDS)}")
        data_steps = env.get("RECOMMENDER_DATA_STEPS", "worker").strip().lower()
        if data_steps not in DATA_STEPS:
            raise SettingsError(f"RECOMMENDER_DATA_STEPS={data_steps!r}: expected one of {', '.join(DATA_STEPS)}")
        root = env.get("RECOMMENDER_STORAGE_ROOT") or default_storage_root(env)
        if "://" not in root:  # a plain folder
            root = Path(root).resolve().as_uri()
        numbers: dict[str, float] = {}
        for name, kind, default, minimum, maximum in (
            ("RECOMMENDER_SYNTHETIC_SCALE", float, "0.05", None, None),
            ("RECOMMENDER_SEED", int, "42", None, None),
            ("RECOMMENDER_CHECK_INTERVAL", float, "30", 0.001, None),
            ("RECOMMENDER_JOB_RETRIES", int, "1", 0, 98),
            ("RECOMMENDER_RETRY_DELAY_SECONDS", int, "60", 0, None),
            # SageMaker's bounds (botocore's service model): training MaxRuntimeInSeconds up to
            # 28 days, processing 777,600 s (9 days), a tuning job 120 s to 15,768,000 s.
            ("RECOMMENDER_TRAINING_MAX_RUNTIME_SECONDS", int, str(cls.training_max_runtime_seconds), 1, 28 * 86400),
            ("RECOMMENDER_PROCESSING_MAX_RUNTIME_SECONDS", int, str(cls.processing_max_runtime_seconds), 1, 9 * 86400),
            ("RECOMMENDER_TRANSFORM_MAX_RUNTIME_SECONDS", int, str(cls.transform_max_runtime_seconds), 1, None),
            ("RECOMMENDER_TUNING_MAX_RUNTIME_SECONDS", int, str(cls.tuning_max_runtime_seconds), 120, 15768000),
            ("RECOMMENDER_TUNING_MAX_JOBS", int, str(cls.tuning_max_jobs), 1, None),
            ("RECOMMENDER_TUNING_MAX_PARALLEL_JOBS", int, str(cls.tuning_max_parallel_jobs), 1, None),
            ("RECOMMENDER_SPOT_MAX_WAIT_SECONDS", int, str(cls.spot_max_wait_seconds), 1, None),
            ("RECOMMENDER_TRAINING_INSTANCE_COUNT", int, "1", 1, None),
            ("RECOMMENDER_TRAIN_SHARDS", int, "0", 0, None),
        ):
            try:
                numbers[name] = kind(env.get(name) or default)
            except ValueError:
                raise SettingsError(
                    f"{name}={env.get(name)!r}: expected {'an integer' if kind is int else 'a number'}"
                ) from None
            if minimum is not None and numbers[name] < minimum:
                raise SettingsError(f"{name}={env.get(name)!r}: expected at least {minimum}")
            if maximum is not None and numbers[name] > maximum:
                raise SettingsError(f"{name}={env.get(name)!r}: expected at most {maximum}")
        shards, instances = numbers["RECOMMENDER_TRAIN_SHARDS"], numbers["RECOMMENDER_TRAINING_INSTANCE_COUNT"]
        if 0 < shards < instances:
            raise SettingsError(
                f"RECOMMENDER_TRAIN_SHARDS={int(shards)} is fewer than RECOMMENDER_TRAINING_INSTANCE_COUNT="
                f"{int(instances)}: with ShardedByS3Key each instance trains on whole files, so some would get none"
            )
        spot = _flag(env.get("RECOMMENDER_MANAGED_SPOT_TRAINING"), "RECOMMENDER_MANAGED_SPOT_TRAINING", False)
        if spot and numbers["RECOMMENDER_SPOT_MAX_WAIT_SECONDS"] < numbers["RECOMMENDER_TRAINING_MAX_RUNTIME_SECONDS"]:
            raise SettingsError(
                f"RECOMMENDER_SPOT_MAX_WAIT_SECONDS={int(numbers['RECOMMENDER_SPOT_MAX_WAIT_SECONDS'])} must be at least "
                f"RECOMMENDER_TRAINING_MAX_RUNTIME_SECONDS={int(numbers['RECOMMENDER_TRAINING_MAX_RUNTIME_SECONDS'])} "
                "with RECOMMENDER_MANAGED_SPOT_TRAINING: SageMaker requires MaxWaitTimeInSeconds >= MaxRuntimeInSeconds"
            )
        return cls(
            storage_root=root.rstrip("/"),
            backend=backend,
            run_hyperparameter_opt=_flag(env.get("RECOMMENDER_RUN_HPO"), "RECOMMENDER_RUN_HPO", False),
            aws_conn_id=env.get("RECOMMENDER_AWS_CONN_ID") or None,
            region=env.get("RECOMMENDER_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
            sagemaker_role_arn=env.get("RECOMMENDER_SAGEMAKER_ROLE_ARN", ""),
            job_name_prefix=env.get("RECOMMENDER_JOB_NAME_PREFIX", "video-recsys"),
            training_instance_type=env.get("RECOMMENDER_TRAINING_INSTANCE_TYPE", "ml.c5.4xlarge"),
            training_instance_count=int(numbers["RECOMMENDER_TRAINING_INSTANCE_COUNT"]),
            train_shards=int(numbers["RECOMMENDER_TRAIN_SHARDS"]),
            transform_instance_type=env.get("RECOMMENDER_TRANSFORM_INSTANCE_TYPE", "ml.c5.xlarge"),
            data_steps=data_steps,
            processing_instance_type=env.get("RECOMMENDER_PROCESSING_INSTANCE_TYPE", "ml.m5.xlarge"),
            check_interval=numbers["RECOMMENDER_CHECK_INTERVAL"],
            deferrable=_flag(env.get("RECOMMENDER_DEFERRABLE"), "RECOMMENDER_DEFERRABLE", False),
            job_retries=int(numbers["RECOMMENDER_JOB_RETRIES"]),
            retry_delay_seconds=int(numbers["RECOMMENDER_RETRY_DELAY_SECONDS"]),
            training_max_runtime_seconds=int(numbers["RECOMMENDER_TRAINING_MAX_RUNTIME_SECONDS"]),
            processing_max_runtime_seconds=int(numbers["RECOMMENDER_PROCESSING_MAX_RUNTIME_SECONDS"]),
            transform_max_runtime_seconds=int(numbers["RECOMMENDER_TRANSFORM_MAX_RUNTIME_SECONDS"]),
            tuning_max_runtime_seconds=int(numbers["RECOMMENDER_TUNING_MAX_RUNTIME_SECONDS"]),
            tuning_max_jobs=int(numbers["RECOMMENDER_TUNING_MAX_JOBS"]),
            tuning_max_parallel_jobs=int(numbers["RECOMMENDER_TUNING_MAX_PARALLEL_JOBS"]),
            managed_spot_training=spot,
            spot_max_wait_seconds=int(numbers["RECOMMENDER_SPOT_MAX_WAIT_SECONDS"]),
            synthetic_scale=numbers["RECOMMENDER_SYNTHETIC_SCALE"],
            seed=int(numbers["RECOMMENDER_SEED"]),
            input_asset_uri=(env.get("RECOMMENDER_INPUT_ASSET") or "").strip(),
        )
