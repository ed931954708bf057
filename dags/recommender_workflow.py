"""
### Video recommender on SageMaker Factorization Machines

`start → preprocess → prepare → branch: train | tune → transform and recommend → evaluate → end`,
then the teardown `delete_model` (the run's SageMaker Model, whatever happened before).

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
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Param, dag, task

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
    @task(multiple_outputs=False)
    def start(run_id=None) -> dict:
        return tasks.start(SETTINGS, run_id)

    @task(multiple_outputs=False)
    def preprocess(run: dict, params=None, triggering_asset_events=None) -> dict:
        return tasks.preprocess(run, params, SETTINGS, triggering_input(triggering_asset_events))

    @task(multiple_outputs=False)
    def prepare(run: dict, _preprocessed: dict, params=None) -> dict:
        return tasks.prepare(run, params, SETTINGS)

    # RECOMMENDER_DATA_STEPS=processing: the same two steps as SageMaker Processing jobs.
    @task(multiple_outputs=False)
    def processing_request(run: dict, step: str, _upstream: dict | None = None, params=None) -> dict:
        return tasks.processing_request(run, params, SETTINGS, step)

    @task(task_id="preprocess", multiple_outputs=False)
    def preprocessed_result(run: dict, _job: dict) -> dict:
        return tasks.preprocessed_result(run, SETTINGS)

    @task(task_id="prepare", multiple_outputs=False)
    def prepared_result(run: dict, _job: dict) -> dict:
        return tasks.prepared_result(run, SETTINGS)

    @task.branch
    def choose_training(params=None) -> str:
        return "tuning_request" if params["run_hyperparameter_opt"] else "training_request"

    @task(multiple_outputs=False)
    def training_request(run: dict, prepared: dict) -> dict:
        return tasks.training_request(run, prepared, SETTINGS)

    @task(multiple_outputs=False)
    def tuning_request(run: dict, prepared: dict) -> dict:
        return tasks.tuning_request(run, prepared, SETTINGS)

    @task(trigger_rule="none_failed_min_one_success", multiple_outputs=False)
    def transform_request(run: dict, prepared: dict, ti=None, params=None) -> dict:
        return tasks.transform_request(run, prepared, *trained(ti, params), SETTINGS)

    @task(multiple_outputs=False, outlets=[RECOMMENDATIONS])
    def recommend(run: dict, transform_config: dict, outlet_events=None) -> dict:
        result = tasks.recommend(run, transform_config, SETTINGS)
        outlet_events[RECOMMENDATIONS].extra = tasks.recommendations_event(result)
        return result

    def evaluate(
        run: dict, prepared: dict, _transformed: dict, _recommended: dict, ti=None, params=None, outlet_events=None
    ) -> dict:
        metrics = tasks.evaluate(run, prepared, *trained(ti, params), SETTINGS)
        outlet_events[MODEL].extra = tasks.model_event(metrics, _recommended)
        return metrics

    def trained(ti, params) -> tuple[dict | None, dict | None]:
        # (train's, tune's) result, pulled from the branch that ran (choose_training's
        # rule) only: an XCom argument of the skipped one would skip the task, and pulling
        # it logs "XCom not found" at error level.
        if params["run_hyperparameter_opt"]:
            return None, ti.xcom_pull(task_ids="tune")
        return ti.xcom_pull(task_ids="train"), None

    run = start()
    if SETTINGS.data_steps == "processing":
        pre_config = processing_request.override(task_id="preprocess_request")(run, "preprocess")
        pre_job = job_operator("processing", SETTINGS, task_id="preprocess_job", config=pre_config)
        preprocessed = preprocessed_result(run, pre_job.output)
        prep_config = processing_request.override(task_id="prepare_request")(run, "prepare", preprocessed)
        prep_job = job_operator("processing", SETTINGS, task_id="prepare_job", config=prep_config)
        prepared = prepared_result(run, prep_job.output)
    else:
        prepared = prepare(run, preprocess(run))
    branch = choose_training()
    train_config = training_request(run, prepared)
    train = job_operator("training", SETTINGS, task_id="train", config=train_config)
    tune_config = tuning_request(run, prepared)
    tune = job_operator("tuning", SETTINGS, task_id="tune", config=tune_config)
    transform_config = transform_request(run, prepared)
    transform = job_operator("transform", SETTINGS, task_id="transform", config=transform_config)
    end = EmptyOperator(task_id="end")
    # Teardown: runs when the Model may exist (transform_request succeeded), even if
    # transform or evaluate failed (Airflow's setup/teardown, all_done_setup_success).
    delete_model = job_operator("model_cleanup", SETTINGS, task_id="delete_model", config=transform_config)

    prepared >> branch >> [train_config, tune_config]
    [train, tune] >> transform_config
    recommended = recommend(run, transform_config)
    # a PythonOperator with the run's "Report" link
    evaluated = EvaluateOperator(
        task_id="evaluate",
        python_callable=evaluate,
        op_args=[run, prepared, transform.output, recommended],
        outlets=[MODEL],
    )
    evaluated >> end
    evaluated >> delete_model.as_teardown(setups=transform_config)


video_recommender()
