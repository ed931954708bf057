"""The whole DAG through Airflow (dag.test on SQLite), local backend, offline."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import dag_runs
import numpy as np
import pytest

pytestmark = pytest.mark.e2e


def run_dag(monkeypatch: pytest.MonkeyPatch, storage: Path, conf: dict):
    """Run on the local backend with outputs under ``storage``; also return the metrics.json path."""
    monkeypatch.setenv("RECOMMENDER_STORAGE_ROOT", storage.as_uri())
    state, states, _ = dag_runs.run_dag(conf)
    return state, states, next(storage.glob("runs/*/metrics.json"), None)


def test_default_data_beats_the_naive_baseline(airflow_db, monkeypatch, tmp_path) -> None:
    state, states, metrics_path = run_dag(monkeypatch, tmp_path, {})
    assert state == "success", states
    assert states["tune"] == "skipped"
    assert all(s == "success" for t, s in states.items() if t != "tune")
    metrics = json.loads(metrics_path.read_text())
    assert metrics["test_rmse"] <= 0.82 * metrics["naive_rmse"], metrics
    assert metrics["rows"]["scored"] == metrics["rows"]["test"] > 0
    # heavier customers are predicted better: the model's error falls with activity, the naive one does not
    buckets = metrics["rmse_by_activity"]
    assert sum(b["test_rows"] for b in buckets) == metrics["rows"]["test"]
    assert buckets[-1]["rmse"] < buckets[0]["rmse"] and all(b["rmse"] < b["naive_rmse"] for b in buckets)
    ranking = metrics["ranking"]
    assert ranking["model"]["ndcg_at_10"] > 5 * ranking["random"]["ndcg_at_10"], ranking
    run_dir = metrics_path.parent
    lines = (run_dir / "recommendations" / "recommendations.jsonl").read_text().splitlines()
    assert len(lines) == metrics["customers"] and len(json.loads(lines[0])["recommendations"]) == 10
    assert (run_dir / "input" / "reviews.tsv.gz").exists()
    assert len(list((run_dir / "transform").glob("test_*.protobuf.out"))) == len(
        list((run_dir / "recordio" / "test").glob("*"))
    )
    assert list((run_dir / "models").glob("*/output/model.tar.gz"))


def test_a_plain_file_with_malformed_lines_runs_and_reports_them(
    airflow_db, monkeypatch, tmp_path, demo_reviews
) -> None:
    lines = gzip.decompress(demo_reviews.read_bytes()).decode().splitlines()
    lines[10] = "a\tbroken\tline"
    lines[20] = lines[20].replace("\t5\t", "\tfive\t", 1) if "\t5\t" in lines[20] else "another\tbroken"
    plain = tmp_path / "reviews.tsv"
    plain.write_text("\n".join(lines) + "\n")
    state, states, metrics_path = run_dag(monkeypatch, tmp_path / "storage", {"input_uri": str(plain)})
    assert state == "success", states
    metrics = json.loads(metrics_path.read_text())
    assert metrics["rows"]["lines_skipped"] == 2
    assert metrics["input"].endswith("reviews.tsv")


def test_missing_column_fails_preprocess_naming_the_file(airflow_db, monkeypatch, tmp_path, capfd) -> None:
    bad = tmp_path / "not_reviews.tsv"
    bad.write_text("customer_id\tvideo\trating\n1\t2\t3\n")
    state, states, metrics_path = run_dag(monkeypatch, tmp_path / "storage", {"input_uri": str(bad)})
    assert state == "failed" and states["preprocess"] == "failed"
    assert metrics_path is None
    out = capfd.readouterr()
    assert "not_reviews.tsv: header line has no column 'product_id', 'star_rating'" in out.out + out.err


def test_tuning_branch_scores_with_the_best_training_job(airflow_db, monkeypatch, tmp_path) -> None:
    from video_recommender.data.recordio import read_sparse
    from video_recommender.engine.artifacts import read_model_tar_gz
    from video_recommender.engine.training import score
    from video_recommender.evaluate import read_predictions

    state, states, metrics_path = run_dag(
        monkeypatch, tmp_path, {"run_hyperparameter_opt": True, "synthetic_scale": 0.02}
    )
    assert state == "success", json.dumps(states)
    assert states["train"] == "skipped" and states["tune"] == "success"
    metrics = json.loads(metrics_path.read_text())
    run_dir = metrics_path.parent
    assert metrics["tuning_job"] and metrics["training_job"].startswith(metrics["tuning_job"] + "-")
    assert sum(metrics["training_jobs"].values()) == 16
    trials = sorted(p.parent.parent.name for p in (run_dir / "models").glob("*/output/model.tar.gz"))
    assert len(trials) == 16 and metrics["training_job"] in trials
    # The report draws every trial, as the tuning job listed them, with the best one marked.
    report = (run_dir / "report.html").read_text()
    payload = report.split('<script id="report-data" type="application/json">', 1)[1].split("</script>", 1)[0]
    tuning = json.loads(payload)["tuning_trials"]
    assert sorted(t["job"] for t in tuning["trials"]) == trials and tuning["metric"] == "test:rmse"
    assert tuning["trials"][tuning["best_trial"] - 1]["job"] == metrics["training_job"]
    assert {p["name"] for p in tuning["parameters"]} == {"factors_lr", "factors_wd", "epochs"}
    # The transform's scores are exactly the best trial's model's scores.
    best = read_model_tar_gz((run_dir / "models" / metrics["training_job"] / "output" / "model.tar.gz").read_bytes())
    first = sorted((run_dir / "recordio" / "test").iterdir())[0]
    rows, _ = read_sparse(first.read_bytes())
    out = run_dir / "transform" / f"{first.name}.out"
    np.testing.assert_allclose(read_predictions(out.read_bytes(), str(out)), score(best, rows), rtol=0, atol=6e-8)


def test_classifier_predicts_likes_end_to_end(airflow_db, monkeypatch, tmp_path) -> None:
    state, states, metrics_path = run_dag(monkeypatch, tmp_path, {"predictor_type": "binary_classifier"})
    assert state == "success", json.dumps(states)
    metrics = json.loads(metrics_path.read_text())
    assert metrics["predictor_type"] == "binary_classifier"
    assert metrics["test_accuracy"] > metrics["naive_accuracy"] + 0.05
    assert metrics["test_cross_entropy"] < metrics["naive_cross_entropy"]
    assert metrics["test_roc_auc"] > 0.7 and metrics["test_pr_auc"] > metrics["always_like_pr_auc"]
    assert metrics["test_f1"] > metrics["always_like_f1"]
    out = sorted((metrics_path.parent / "transform").glob("*.out"))[0]
    first = json.loads(out.read_text().splitlines()[0])
    assert set(first) == {"score", "predicted_label"} and first["predicted_label"] in (0, 1)
