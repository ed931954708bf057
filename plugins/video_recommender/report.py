"""A self-contained HTML report of one run: the model's quality against its baselines, with plots.

One file, readable offline: the data is embedded as JSON and the plots are drawn by
Chart.js 4.6.1 (MIT), inlined from ``report_assets/``. Why a vendored chart library:
MWAA's constraints pin no plotting package, matplotlib would add six wheels (and
Pillow) to every worker for a few figures, and a browser draws the charts anyway
when the report is opened, from the Airflow UI or from disk. The template is Jinja2,
which Airflow itself depends on.

Built by ``evaluate``, which has the test predictions in hand; written as
``report.html`` in the run folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from video_recommender.layout import RunPaths
from video_recommender.steps import LIKE_THRESHOLD
from video_recommender.storage import write_atomically

ASSETS = Path(__file__).with_name("report_assets")
CHART_JS = ASSETS / "chart-4.6.1.umd.min.js"
SAMPLE_CUSTOMERS = 3


def predicted_by_actual(y: np.ndarray, s: np.ndarray) -> list[dict]:
    """Per actual rating (or label): rows, and the 10th, 50th and 90th percentile and mean of the predictions."""
    out = []
    for value in np.unique(y):
        p = s[y == value]
        q10, q50, q90 = np.percentile(p, [10, 50, 90])
        out.append(
            {"actual": float(value), "rows": len(p), "mean": float(p.mean()),
             "p10": float(q10), "p50": float(q50), "p90": float(q90)}
        )  # fmt: skip
    return out


def sample_recommendations(run: RunPaths, seed: int, count: int = SAMPLE_CUSTOMERS, shown: int = 5) -> list[dict]:
    """A few customers' top recommendations, next to the videos they rated 4 or 5 in train."""
    recs_path = run.recommendations / "recommendations.parquet"
    if not recs_path.exists():
        return []
    with recs_path.open("rb") as fh:
        recs = pq.read_table(fh).to_pandas()
    with (run.preprocessed / "train.parquet").open("rb") as fh:
        train = pq.read_table(fh).to_pandas()
    with (run.preprocessed / "customers.parquet").open("rb") as fh:
        customer_ids = pq.read_table(fh)["customer_id"].to_pylist()
    with (run.preprocessed / "videos.parquet").open("rb") as fh:
        videos = pq.read_table(fh).to_pandas()
    titles = videos["product_title"] if "product_title" in videos else videos["product_id"]
    liked = train[train["star_rating"] >= LIKE_THRESHOLD]
    per_customer = liked.groupby("customer_index")["video_index"].apply(list)
    eligible = per_customer[per_customer.map(len) >= 3].index.to_numpy()
    if len(eligible) == 0:
        return []
    chosen = np.sort(np.random.default_rng(seed).choice(eligible, min(count, len(eligible)), replace=False))
    samples = []
    for c in chosen:
        cid = customer_ids[c]
        top = recs[recs["customer_id"] == cid].sort_values("rank").head(shown)
        samples.append(
            {
                "customer_id": cid,
                "liked": [str(titles.iloc[v]) for v in per_customer[c][:shown]],
                "recommended": [
                    {"title": str(t) if t is not None else str(p), "score": round(float(sc), 3)}
                    for p, t, sc in zip(top["product_id"], top["product_title"], top["score"], strict=True)
                ],
            }
        )
    return samples


def render(data: dict) -> str:
    """The report's HTML for ``data`` (metrics, per-rating predictions, samples)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ASSETS), autoescape=jinja2.select_autoescape(["html", "j2"])
    )
    template = env.get_template("report.html.j2")
    # </script> inside the embedded JSON would end the script element: escape the slash
    payload = json.dumps(data, sort_keys=True).replace("</", "<\\/")
    return template.render(data=data, payload=payload, chart_js=CHART_JS.read_text())


def write_report(
    run: RunPaths,
    metrics: dict,
    y: np.ndarray,
    s: np.ndarray,
    seed: int,
    learning_curve: dict | None = None,
    *,
    tuning_trials: dict | None = None,
) -> None:
    """Write ``report.html``; ``tuning_trials`` (``tuning_trials.trials_for_report``) adds the tuning charts."""
    data = {
        "run": run.root.name,
        "metrics": metrics,
        "learning_curve": learning_curve if learning_curve and learning_curve["epochs"] else None,
        "tuning_trials": tuning_trials if tuning_trials and tuning_trials.get("trials") else None,
        "predicted_by_actual": predicted_by_actual(y, s),
        "samples": sample_recommendations(run, seed),
    }
    write_atomically(run.report, render(data).encode())
