"""One run's paths and SageMaker names, all from its run id (cheap to import: used at DAG parse time).

``Run`` is the one place a run's storage paths and job names come from: every task
builds it from the settings and its own run id, so no task needs another's output to
know where things are.

Layout of one run::

    <storage root>/runs/<run key>/
      run.json                        written by start (run id, backend): proves the root is writable
      input/reviews.tsv.gz            generated when no input_uri is given
      preprocessed/{train,validate,test}.parquet, customers.parquet, videos.parquet, summary.json
      recordio/train/train_00000.protobuf ...  recordio/validate/validate_00000.protobuf ...  (one per shard)
      recordio/test/test_00000.protobuf ...  (10,000 records per file)
      models/<training job>/output/model.tar.gz
      transform/test_00000.protobuf.out ...
      recommendations/recommendations.parquet, recommendations.jsonl, ranking.json
      metrics.json
      report.html                     self-contained: the metrics against their baselines, with plots

The local backend also keeps, under ``<storage root>/local-sagemaker/``, what SageMaker
itself would keep: its models, the training jobs' logs and the tuning jobs' trial lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from video_recommender.sagemaker_requests import MAX_TUNING_JOB_NAME, job_name
from video_recommender.storage import PathLike

RUNS = "runs"


def run_key(run_id: str) -> str:
    """A folder name for a DAG run id (``manual__2026-11-25T10:00:00+00:00`` -> safe characters)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("_") or "run"


@dataclass(frozen=True)
class RunPaths:
    root: PathLike

    @property
    def input(self) -> PathLike:
        return self.root / "input" / "reviews.tsv.gz"

    @property
    def preprocessed(self) -> PathLike:
        return self.root / "preprocessed"

    @property
    def recordio(self) -> PathLike:
        return self.root / "recordio"

    @property
    def models(self) -> PathLike:
        return self.root / "models"

    @property
    def transform(self) -> PathLike:
        return self.root / "transform"

    @property
    def recommendations(self) -> PathLike:
        return self.root / "recommendations"

    @property
    def ranking(self) -> PathLike:
        return self.recommendations / "ranking.json"

    @property
    def report(self) -> PathLike:
        return self.root / "report.html"

    @property
    def metrics(self) -> PathLike:
        return self.root / "metrics.json"


def runs_folder(storage_root: PathLike) -> PathLike:
    """The folder that holds every run's folder."""
    return storage_root / RUNS


@dataclass(frozen=True)
class LocalSageMaker:
    """The local backend's stand-in for what SageMaker keeps about its jobs, under ``<storage root>/local-sagemaker``."""

    root: PathLike

    @property
    def models(self) -> PathLike:
        """CreateModel records (SageMaker's model list)."""
        return self.root / "models"

    def training_log(self, training_job: str) -> PathLike:
        """A training job's log, as CloudWatch keeps it: group ``/aws/sagemaker/TrainingJobs``, stream ``<job>/algo-1-…``."""
        return self.root / "logs" / "TrainingJobs" / training_job / "algo-1.log"

    def tuning_trials(self, tuning_job: str) -> PathLike:
        """A tuning job's ListTrainingJobsForHyperParameterTuningJob listing."""
        return self.root / "tuning-jobs" / tuning_job / "training-job-summaries.json"


@dataclass(frozen=True)
class JobNames:
    """The run's SageMaker names (before ``name_for_try`` adds each try's suffix)."""

    prefix: str
    run_id: str

    def _name(self, kind: str, max_length: int | None = None) -> str:
        return job_name(self.prefix, kind, self.run_id, *(() if max_length is None else (max_length,)))

    @property
    def preprocess(self) -> str:
        return self._name("preprocess")

    @property
    def prepare(self) -> str:
        return self._name("prepare")

    @property
    def train(self) -> str:
        return self._name("train")

    @property
    def tune(self) -> str:
        return self._name("hpo", MAX_TUNING_JOB_NAME)

    @property
    def model(self) -> str:
        return self._name("model")

    @property
    def transform(self) -> str:
        return self._name("transform")


@dataclass(frozen=True)
class Run:
    """One DAG run: where its files go and what its jobs are called, from the run id alone."""

    run_id: str
    storage_root: PathLike  # ``ObjectStoragePath`` in tasks: file:// locally, s3:// on MWAA
    job_name_prefix: str

    @property
    def key(self) -> str:
        return run_key(self.run_id)

    @property
    def paths(self) -> RunPaths:
        return RunPaths(runs_folder(self.storage_root) / self.key)

    @property
    def names(self) -> JobNames:
        return JobNames(self.job_name_prefix, self.run_id)

    @property
    def local_sagemaker(self) -> LocalSageMaker:
        return LocalSageMaker(self.storage_root / "local-sagemaker")
