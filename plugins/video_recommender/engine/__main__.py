"""``python -m video_recommender.engine``: run one SageMaker request locally (see ``cli``)."""

import sys

from video_recommender.engine.cli import main

sys.exit(main())
