"""``python -m video_recommender.engine``: run one SageMaker request locally (see ``cli``)."""

import sys

# Airflow's plugins manager imports every module under plugins/ by its file stem, so it
# loads this file as "__main__" too: only the interpreter's ``-m`` gives the full name.
if __spec__ is not None and __spec__.name == "video_recommender.engine.__main__":
    from video_recommender.engine.cli import main

    sys.exit(main())
