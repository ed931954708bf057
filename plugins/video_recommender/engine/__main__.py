"""``python -m video_recommender.engine``: run one SageMaker request locally (see ``cli``)."""

import sys

# plugins/.airflowignore keeps Airflow's plugins manager out of this package (it would load
# this file as "__main__"); the guard holds wherever it is loaded without that file.
if __spec__ is not None and __spec__.name == "video_recommender.engine.__main__":
    from video_recommender.engine.cli import main

    sys.exit(main())
