"""Run the recommender DAG with dag.test() and read back what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def load_dag() -> Any:
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags["video_recommender"]


def run_dag(conf: dict) -> tuple[str, dict[str, str], str]:
    """(run state, {task_id: state}, run_id) of one run with ``conf``; settings come from the environment."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag = load_dag()
    dag_run = dag.test(run_conf=conf)
    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == dag_run.run_id)
        ).all()
        states = {ti.task_id: str(ti.state).split(".")[-1] for ti in tis}
    return str(dag_run.state).split(".")[-1], states, dag_run.run_id


def rendered_config(run_id: str, task_id: str) -> Any:
    """The ``config`` a task rendered in run ``run_id``, as the UI's Rendered Templates view shows it."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(
            select(RenderedTaskInstanceFields).where(
                RenderedTaskInstanceFields.run_id == run_id, RenderedTaskInstanceFields.task_id == task_id
            )
        ).one()
        return row.rendered_fields["config"]
