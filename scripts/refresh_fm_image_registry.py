"""Regenerate plugins/video_recommender/fm_image_registry.json from the SageMaker SDK.

The SDK cannot be installed beside Airflow 3.3.1 under MWAA's constraints (checked with
pip's resolver: sagemaker 3.27.0 -> sagemaker-core 2.27.0 needs boto3>=1.43.90, MWAA pins
1.43.56; sagemaker 2.257.7 needs attrs<26, MWAA pins 26.1.0), so the image registry is
taken from it here, in a throwaway venv, and committed as data:

    python3 -m venv /tmp/sdk && /tmp/sdk/bin/pip install sagemaker==2.257.7
    SAGEMAKER_SUPPRESS_V2_WARNING=1 /tmp/sdk/bin/python scripts/refresh_fm_image_registry.py
"""

import json
from pathlib import Path

import sagemaker
from sagemaker import image_uris

OUT = Path(__file__).resolve().parent.parent / "plugins" / "video_recommender" / "fm_image_registry.json"
config = image_uris.config_for_framework("factorization-machines")
regions = sorted(config["versions"]["1"]["registries"])
registry = {region: image_uris.retrieve("factorization-machines", region, version="1") for region in regions}
OUT.write_text(
    json.dumps(
        {
            "source": f"sagemaker {sagemaker.__version__} image_uris.retrieve('factorization-machines', region)",
            "images": registry,
        },
        indent=2,
        sort_keys=True,
    )
    + "\n"
)
print(f"{len(registry)} regions -> {OUT}")
