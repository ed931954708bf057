"""Where one workflow run keeps its files (cheap to import: used at DAG parse time).

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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from video_recommender.storage import PathLike


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
