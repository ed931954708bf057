"""Learning curves from FM's log lines, as real jobs print them (shared/reference/factorization-machines.md §4)."""

from __future__ import annotations

from video_recommender.training_logs import learning_curve

REAL_STYLE = [
    "[12/02/2026 06:20:01 INFO 140] #quality_metric: host=algo-1, epoch=0, batch=0 train rmse <loss>=1.9",
    "[12/02/2026 06:20:01 INFO 140] #quality_metric: host=algo-1, epoch=0, train rmse <loss>=1.2",
    "[12/02/2026 06:20:01 INFO 140] #quality_metric: host=algo-1, epoch=0, train absolute_loss <loss>=0.9",
    "[12/02/2026 06:20:02 INFO 140] #quality_metric: host=algo-2, epoch=0, train rmse <loss>=1.3",
    "[12/02/2026 06:20:02 INFO 140] #quality_metric: host=algo-1, epoch=1, train rmse <loss>=1.0",
    "[12/02/2026 06:20:03 INFO 140] #quality_metric: host=algo-1, train rmse <loss>=1.0",
    "[12/02/2026 06:20:03 INFO 140] #quality_metric: host=algo-1, test rmse <loss>=1.05",
    "[12/02/2026 06:20:03 INFO 140] #test_score (algo-1) : ('rmse', 1.05)",
]


def test_per_epoch_train_metrics_of_the_first_host_and_the_final_validation() -> None:
    curve = learning_curve(REAL_STYLE)
    assert curve["epochs"] == {"rmse": [[0, 1.2], [1, 1.0]], "absolute_loss": [[0, 0.9]]}  # no batch, no algo-2
    assert curve["validation"] == {"rmse": 1.05} and curve["metric"] == "rmse"


def test_the_classifier_shows_its_cross_entropy_and_an_empty_log_nothing() -> None:
    lines = [
        "#quality_metric: host=algo-1, epoch=0, train binary_classification_accuracy <score>=0.7",
        "#quality_metric: host=algo-1, epoch=0, train binary_classification_cross_entropy <loss>=0.6",
    ]
    assert learning_curve(lines)["metric"] == "binary_classification_cross_entropy"
    assert learning_curve([]) == {"epochs": {}, "validation": {}, "metric": None}


def test_on_sagemaker_the_lines_come_from_the_jobs_cloudwatch_streams(monkeypatch) -> None:
    import time

    import boto3
    from moto import mock_aws

    from video_recommender import tasks
    from video_recommender.settings import Settings

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(
        {"RECOMMENDER_STORAGE_ROOT": "s3://bucket/prefix", "RECOMMENDER_BACKEND": "sagemaker",
         "RECOMMENDER_REGION": "eu-west-1", "RECOMMENDER_SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sm"}
    )  # fmt: skip
    with mock_aws():
        logs = boto3.client("logs", region_name="eu-west-1")
        logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
        for stream, lines in (("job-1/algo-1-1700000000", REAL_STYLE), ("job-10/algo-1-1700000000", ["other job"])):
            logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)
            logs.put_log_events(
                logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream,
                # now: CloudWatch (and moto) drop events older than 14 days
                logEvents=[{"timestamp": int(time.time() * 1000) + i, "message": m} for i, m in enumerate(lines)],
            )  # fmt: skip
        run = tasks.run_of(settings, "manual__1")
        lines = tasks.training_log_lines("job-1", run, settings)
        missing = tasks.training_log_lines("job-2", run, settings)
    assert lines == REAL_STYLE and missing == []  # "job-10" is another job: the prefix ends in "/"
    assert learning_curve(lines)["epochs"]["rmse"] == [[0, 1.2], [1, 1.0]]
