"""Run the recommender DAG end to end through Airflow, offline, and summarise it.

    python scripts/run_demo.py [--input reviews.tsv.gz] [--hpo] [--scale 0.05] [--verbose]

Uses a SQLite metadata DB under .demo/airflow-home (created on the fly), the
local backend, and outputs under ./output/runs/<run> (or RECOMMENDER_STORAGE_ROOT). Airflow's
own logs (several hundred lines) go to .demo/airflow.log unless --verbose (make demo
VERBOSE=1); the terminal gets the summary. The last line printed is the path of the run's
metrics.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def configure_environment(airflow_home: Path) -> None:
    airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(airflow_home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("RECOMMENDER_STORAGE_ROOT", (REPO / "output").as_uri())
    os.environ.setdefault("RECOMMENDER_BACKEND", "local")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".demo" / "numba-cache"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument(
        "--input", default="", help="reviews TSV (gzip or plain): path, file:// or s3:// URI; default: generated data"
    )
    parser.add_argument("--hpo", action="store_true", help="take the hyper-parameter tuning branch")
    parser.add_argument(
        "--scale", type=float, default=None, help="size of the generated data (1.0 = 4 million reviews)"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--predictor-type", choices=["regressor", "binary_classifier"], default=None,
        help="binary_classifier predicts likes (rating >= 4) instead of ratings",
    )  # fmt: skip
    parser.add_argument("--airflow-home", type=Path, default=REPO / ".demo" / "airflow-home")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's logs instead of writing them to a file")
    args = parser.parse_args(argv)
    configure_environment(args.airflow_home)
    log_file = None if args.verbose else REPO / ".demo" / "airflow.log"
    if log_file:
        print(f"Running the workflow through Airflow; its logs go to {log_file} (VERBOSE=1 shows them) ...", flush=True)
    with logs_to(log_file):
        outcome = run(args)
    if isinstance(outcome, str):  # the DAG did not import
        print(outcome, file=sys.stderr)
        return 1
    return summarise(*outcome, log_file=log_file)


@contextmanager
def logs_to(path: Path | None) -> Generator[None]:
    """Send everything written to stdout and stderr (Airflow's logs, warnings) to ``path`` while inside.

    At the file-descriptor level, because Airflow's log handlers hold the streams they
    found at start-up. The summary is printed after, to the terminal.
    """
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("wb") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run(args: argparse.Namespace) -> tuple | str:
    """Run the DAG once with dag.test(); (dag, its run, set-up seconds, error lines), or why it did not import."""

    # Airflow reads its configuration when first imported: only now.
    from airflow.models import DagBag
    from airflow.utils.db import initdb

    t0 = time.perf_counter()
    initdb()
    bag = DagBag(dag_folder=str(REPO / "dags" / "recommender_workflow.py"))
    if bag.import_errors:
        return "\n".join(f"DAG import error in {path}:\n{err}" for path, err in bag.import_errors.items())
    dag = bag.dags["video_recommender"]
    conf: dict = {"run_hyperparameter_opt": args.hpo}
    if args.input:
        conf["input_uri"] = args.input if "://" in args.input else str(Path(args.input).expanduser().resolve())
    if args.scale is not None:
        conf["synthetic_scale"] = args.scale
    if args.seed is not None:
        conf["seed"] = args.seed
    if args.predictor_type:
        conf["predictor_type"] = args.predictor_type
    warm_up_task_execution()
    setup_seconds = time.perf_counter() - t0

    # dag.test prints task logs with tracebacks; keep their last lines ("SomeError: why") for the summary.
    watch = ErrorLineTee(sys.stdout)
    sys.stdout = watch
    try:
        dag_run = dag.test(run_conf=conf)
    finally:
        sys.stdout = watch.stream
    return dag, dag_run, setup_seconds, watch.errors


class ErrorLineTee:
    """Pass output through, remembering lines such as ``airflow...AirflowException: <reason>``."""

    PATTERN = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$")

    def __init__(self, stream) -> None:
        self.stream = stream
        self.errors: list[str] = []
        self._partial = ""
        self._last_is_new = False  # the last non-blank line added an error

    # Python prints a chained exception's causes first, each followed by one of these: such a
    # cause is the detail, the last exception of the traceback the reason.
    CAUSE_MARKERS = ("The above exception was the direct cause", "During handling of the above exception")

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            stripped = line.strip()
            if self.errors and stripped.startswith(self.CAUSE_MARKERS) and self._last_is_new:
                self.errors.pop()  # the line before was a cause, not the reason
                self._last_is_new = False
                continue
            match = self.PATTERN.match(stripped)
            if match:
                self._last_is_new = not any(e.endswith(f": {match.group(2)}") for e in self.errors)
                if self._last_is_new:
                    self.errors.append(f"{match.group(1)}: {match.group(2)}")
            elif stripped:
                self._last_is_new = False
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def warm_up_task_execution() -> None:
    """Start what dag.test starts for its first task, so that task's time is its own.

    Measured: the first task (start) took 3.7 s, of which 0.06 s was start's own work. The
    rest was dag.test's in-process Execution API server: building its FastAPI app (0.5 s)
    and answering its first request (2.9 s, whatever the route: Airflow's versioned API
    prepares itself then). Both are cached for the process (``in_process_api_server`` is an
    lru_cache, its transport a cached property), so they count as Airflow's set-up here. On
    MWAA the API server is long-running and a task pays none of it.
    """
    import httpx
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    api = in_process_api_server()
    with httpx.Client(transport=api.transport, base_url="http://in-process.invalid/execution/") as client:
        client.get("health")  # the first request starts the app's lifespan and services


def summarise(dag, dag_run, setup_seconds: float, failures: list[str], log_file: Path | None = None) -> int:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from video_recommender.settings import Settings
    from video_recommender.storage import is_local, local_path
    from video_recommender.tasks import run_of

    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == dag_run.run_id)
        ).all()
        rows = sorted(
            ((ti.start_date, ti.task_id, str(ti.state), ti.duration) for ti in tis),
            key=lambda r: (r[0] is None, r[0] or 0),
        )
    print("\n== Summary: video_recommender, run", dag_run.run_id, "->", dag_run.state)
    print(f"   Airflow set-up (metadata DB, DAG parse, task execution API): {setup_seconds:.1f} s")
    for _, task_id, state, duration in rows:
        shown = f"{duration:6.1f} s" if duration is not None else "     - "
        print(f"   {task_id:<20} {state.split('.')[-1]:<16} {shown}")
    metrics = run_of(Settings.from_env(), dag_run.run_id).paths.metrics
    metrics_path = local_path(metrics) if is_local(metrics) else None
    if str(dag_run.state).split(".")[-1] != "success" or metrics_path is None or not metrics_path.exists():
        print("The run did not succeed:", file=sys.stderr)
        for failure in failures or [f"see the task logs {'in ' + str(log_file) if log_file else 'above'}"]:
            print(f"   {failure}", file=sys.stderr)
        return 1
    m = json.loads(metrics_path.read_text())
    r = m["rows"]
    print(
        f"   rows: {r['read']} read ({r['lines_skipped']} lines skipped), {r['after_dedupe']} after filtering, "
        f"train/validate/test {r['train']}/{r['validate']}/{r['test']}; feature_dim {m['feature_dim']}"
    )
    for reason, count in r["lines_skipped_by_reason"].items():
        print(f"   skipped: {count} {reason}")
    if m["predictor_type"] == "binary_classifier":
        print(
            f"   likes (rating >= 4): test F1 {m['test_f1']:.4f} vs always-like {m['always_like_f1']:.4f}, "
            f"ROC-AUC {m['test_roc_auc']:.4f} vs 0.5, PR-AUC {m['test_pr_auc']:.4f} vs {m['always_like_pr_auc']:.4f}, "
            f"accuracy {m['test_accuracy']:.4f} vs naive {m['naive_accuracy']:.4f}"
        )
    else:
        print(
            f"   test RMSE {m['test_rmse']:.4f} vs naive (train mean) {m['naive_rmse']:.4f}: "
            f"ratio {m['rmse_ratio_to_naive']:.3f}"
        )
    ranking = m.get("ranking")
    if ranking:
        k = ranking["k"]
        shown = {who: ranking[who] for who in ("model", "most_popular", "random")}
        print(
            f"   top-{k} on the test split ({ranking['relevant']} relevant): NDCG@{k} "
            + ", ".join(f"{who} {r[f'ndcg_at_{k}']:.4f}" for who, r in shown.items())
            + f"; precision@{k} "
            + ", ".join(f"{who} {r[f'precision_at_{k}']:.4f}" for who, r in shown.items())
        )
        print_sample_recommendations(metrics_path.parent / "recommendations" / "recommendations.jsonl")
    report = metrics_path.parent / "report.html"
    if report.exists():
        print(f"   report: {report}")
    print(metrics_path)
    return 0


def print_sample_recommendations(path: Path, count: int = 3) -> None:
    """The first customer's top ``count`` recommendations, with titles."""
    if not path.exists():
        return
    with path.open() as fh:
        first = json.loads(fh.readline())
    picks = "; ".join(
        f"{r['product_title'] or r['product_id']} ({r['score']:.2f})" for r in first["recommendations"][:count]
    )
    print(f"   customer {first['customer_id']}: {picks}")


if __name__ == "__main__":
    raise SystemExit(main())
