"""
### Video recommender on SageMaker Factorization Machines

`start → preprocess → prepare → choose_training → train | tune → transform → recommend → evaluate`,
and the teardown `delete_model` (the run's SageMaker Model, whatever happened after `start`).

Customer star ratings of videos (Amazon customer-reviews TSV schema) are filtered,
indexed and split, one-hot encoded as RecordIO-protobuf, used to train the
SageMaker built-in Factorization Machines model, scored with batch transform and
evaluated against the held-out test split (`metrics.json` in the run's folder); every
customer gets the ten videos the model ranks best among those they have not rated
(`recommendations/` in the run's folder).

Settings come from the environment (`video_recommender.settings`):
`RECOMMENDER_STORAGE_ROOT` (`file://…` locally, `s3://bucket/prefix` on MWAA) and
`RECOMMENDER_BACKEND` (`local`: the offline FM engine; `sagemaker`: AWS).
Leave `input_uri` empty to run on generated data.

Each task finds the run's folder and job names from its own run id
(`video_recommender.layout.Run`), and the job tasks build their SageMaker request when
they run, so the graph's edges are the order of the steps and nothing else.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, setup, task

from video_recommender import tasks
from video_recommender.assets import input_asset, model_asset, recommendations_asset, triggering_input
from video_recommender.operators import EvaluateOperator, job_operator
from video_recommender.settings import Settings

SETTINGS = Settings.from_env()  # environment only: no network, no AWS at parse time
MODEL, RECOMMENDATIONS, INPUT = model_asset(SETTINGS), recommendations_asset(SETTINGS), input_asset(SETTINGS)


@dag(
    dag_id="video_recommender",
    # manual runs, or each new reviews file when RECOMMENDER_INPUT_ASSET names one
    schedule=[INPUT] if INPUT else None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["recommender", "sagemaker", "factorization-machines"],
    doc_md=__doc__,
    params={
        # null, not "": the UI's trigger form treats an empty value of a type without
        # "null" as a missing required field and keeps its Trigger button disabled.
        "input_uri": Param(
            None,
            type=["null", "string"],
            description="Reviews TSV (gzip or plain): a local path, file:// or s3:// URI. Empty: generated data.",
        ),
        "run_hyperparameter_opt": Param(
            SETTINGS.run_hyperparameter_opt,
            type="boolean",
            description="Tune hyper-parameters instead of one training job.",
        ),
        "synthetic_scale": Param(
            SETTINGS.synthetic_scale,
            type="number",
            exclusiveMinimum=0,
            maximum=10,
            description="Size of the generated data when input_uri is empty (1.0 = the original sample's 4 million reviews).",
        ),
        "seed": Param(
            SETTINGS.seed, type="integer", description="Seed for generated data and the train/validate/test split."
        ),
        "predictor_type": Param(
            "regressor",
            enum=["regressor", "binary_classifier"],
            description="regressor: predict the star rating; binary_classifier: predict a like (rating >= 4).",
        ),
    },
)
def video_recommender():
    @setup
    @task(multiple_outputs=False)
    def start(run_id=None) -> dict:
        return tasks.start(SETTINGS, run_id)

    @task(multiple_outputs=False)
    def preprocess(run_id=None, params=None, triggering_asset_events=None) -> dict:
        return tasks.preprocess(SETTINGS, run_id, params, triggering_input(triggering_asset_events))

    @task(multiple_outputs=False)
    def prepare(run_id=None, params=None) -> dict:
        return tasks.prepare(SETTINGS, run_id, params)

    @task.branch(task_id=tasks.BRANCH_TASK)
    def choose_training(ti=None, params=None) -> str:
        return tasks.choose_training(ti, params)

    @task(multiple_outputs=False, outlets=[RECOMMENDATIONS])
    def recommend(run_id=None, ti=None, outlet_events=None) -> dict:
        result = tasks.recommend(SETTINGS, run_id, *tasks.trained(ti))
        outlet_events[RECOMMENDATIONS].extra = tasks.recommendations_event(result)
        return result

    def evaluate(run_id=None, ti=None, outlet_events=None) -> dict:
        metrics = tasks.evaluate(SETTINGS, run_id, *tasks.trained(ti))
        outlet_events[MODEL].extra = tasks.model_event(metrics)
        return metrics

    if SETTINGS.data_steps == "processing":  # the same two steps as SageMaker Processing jobs
        preprocessed = job_operator("processing", SETTINGS, task_id="preprocess", request=tasks.preprocess_job_request)
        prepared = job_operator("processing", SETTINGS, task_id="prepare", request=tasks.prepare_job_request)
    else:
        preprocessed, prepared = preprocess(), prepare()
    train = job_operator("training", SETTINGS, task_id=tasks.TRAIN_TASK, request=tasks.training_job_request)
    tune = job_operator("tuning", SETTINGS, task_id=tasks.TUNE_TASK, request=tasks.tuning_job_request)
    transform = job_operator(
        "transform",
        SETTINGS,
        task_id="transform",
        request=tasks.transform_job_request,
        trigger_rule="none_failed_min_one_success",  # after whichever branch ran
    )
    # a PythonOperator with the run's "Report" link
    evaluated = EvaluateOperator(task_id="evaluate", python_callable=evaluate, outlets=[MODEL])
    # Teardown of the run's set-up: deletes the transform's Model whenever it may exist,
    # even if transform or evaluate failed (Airflow's setup/teardown, all_done_setup_success).
    delete_model = job_operator(
        "model_cleanup", SETTINGS, task_id="delete_model", request=tasks.model_cleanup_job_request
    )

    run = start()
    run >> preprocessed >> prepared >> choose_training() >> [train, tune] >> transform
    transform >> recommend() >> evaluated >> delete_model.as_teardown(setups=run)


video_recommender()
