"""The recommend step on a pre-processed run: ids, titles, exclusions, scores as FM predicts them, the ranking file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from video_recommender import recommend, steps
from video_recommender.engine.artifacts import FMModel, write_model_tar_gz
from video_recommender.layout import RunPaths
from video_recommender.ranking import fm_predictions


@pytest.fixture(scope="module")
def prepared_run(tmp_path_factory: pytest.TempPathFactory, demo_reviews: Path) -> RunPaths:
    run = RunPaths(tmp_path_factory.mktemp("recommend") / "run")
    steps.preprocess_step(demo_reviews, run)
    return run


def model_for(run: RunPaths, seed: int = 0, feature_dim: int | None = None) -> tuple[Path, FMModel]:
    pre = json.loads((run.preprocessed / "summary.json").read_text())
    dim = feature_dim or pre["feature_dim"]
    rng = np.random.default_rng(seed)
    model = FMModel(
        np.array([3.0], np.float32), rng.normal(size=dim).astype(np.float32) * 0.3,
        rng.normal(size=(dim, 4)).astype(np.float32) * 0.5,
    )  # fmt: skip
    path = run.root / f"model-{seed}-{dim}.tar.gz"
    path.write_bytes(write_model_tar_gz(model))
    return path, model


def test_each_customer_gets_ten_unrated_videos_with_ids_titles_and_fm_scores(
    prepared_run: RunPaths, demo_reviews
) -> None:
    path, model = model_for(prepared_run)
    summary = recommend.recommend_step(prepared_run, path)
    recs = pd.read_parquet(prepared_run.recommendations / "recommendations.parquet")
    customers = pd.read_parquet(prepared_run.preprocessed / "customers.parquet")["customer_id"]
    videos = pd.read_parquet(prepared_run.preprocessed / "videos.parquet")
    assert len(recs) == 10 * len(customers) and summary["customers"] == len(customers)
    assert set(recs["customer_id"]) == set(customers)
    assert (recs.groupby("customer_id")["rank"].apply(list) == [list(range(1, 11))] * len(customers)).all()
    assert (recs.groupby("customer_id")["score"].apply(lambda s: bool(np.all(np.diff(s) <= 1e-6)))).all()

    # titles as the input has them; nothing the customer rated in any split
    title_of = dict(zip(videos["product_id"], videos["product_title"], strict=True))
    assert (recs["product_title"] == recs["product_id"].map(title_of)).all()
    assert recs["product_title"].str.startswith("Synthetic Video ").all()
    rated = pd.concat(
        pd.read_parquet(prepared_run.preprocessed / f"{s}.parquet") for s in ("train", "validate", "test")
    )
    rated_pairs = set(
        zip(customers.iloc[rated["customer_index"]], videos["product_id"].iloc[rated["video_index"]], strict=True)
    )
    assert not rated_pairs & set(zip(recs["customer_id"], recs["product_id"], strict=True))

    # the score is FM's prediction for the pair, as batch transform would return it
    c_index = {c: i for i, c in enumerate(customers)}
    v_index = {v: i for i, v in enumerate(videos["product_id"])}
    sample = recs.sample(200, random_state=0)
    expected = fm_predictions(
        model,
        len(customers),
        sample["customer_id"].map(c_index).to_numpy(),
        sample["product_id"].map(v_index).to_numpy(),
    )
    np.testing.assert_allclose(sample["score"], expected, rtol=1e-5, atol=1e-4)

    lines = (prepared_run.recommendations / "recommendations.jsonl").read_text().splitlines()
    assert len(lines) == len(customers)
    first = json.loads(lines[0])
    head = recs[recs["customer_id"] == first["customer_id"]]
    assert [r["product_id"] for r in first["recommendations"]] == head["product_id"].tolist()


def test_the_ranking_file_compares_the_model_with_both_baselines(prepared_run: RunPaths) -> None:
    path, _ = model_for(prepared_run, seed=1)
    recommend.recommend_step(prepared_run, path)
    ranking = json.loads(prepared_run.ranking.read_text())
    assert ranking["k"] == 10 and ranking["relevant"] == "test ratings >= 4"
    test = pd.read_parquet(prepared_run.preprocessed / "test.parquet")
    assert ranking["customers_with_relevant"] == test.loc[test["star_rating"] >= 4, "customer_index"].nunique()
    for name in ("model", "most_popular", "random"):
        m = ranking[name]
        assert 0 <= m["precision_at_10"] <= 1 and 0 <= m["ndcg_at_10"] <= 1 and 0 < m["catalogue_coverage"] <= 1
        assert m["customers_evaluated"] == ranking["customers_with_relevant"] > 0
    # popular videos are liked more often than random ones in the generated data
    assert ranking["most_popular"]["precision_at_10"] > ranking["random"]["precision_at_10"]
    assert ranking["most_popular"]["catalogue_coverage"] < ranking["random"]["catalogue_coverage"]


def test_a_model_of_other_data_is_refused_naming_both_sizes(prepared_run: RunPaths) -> None:
    path, _ = model_for(prepared_run, feature_dim=50)
    with pytest.raises(recommend.RecommendError, match=r"model-0-50\.tar\.gz: the model has feature_dim 50"):
        recommend.recommend_step(prepared_run, path)
