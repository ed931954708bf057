"""Regenerate plugins/video_recommender/sagemaker_images.json from the SageMaker SDK.

The SDK cannot be installed beside Airflow 3.3.1 under MWAA's constraints (checked with
pip's resolver: sagemaker 3.27.0 -> sagemaker-core 2.27.0 needs boto3>=1.43.90, MWAA pins
1.43.56; sagemaker 2.257.7 needs attrs<26, MWAA pins 26.1.0), so its image registry is
read here, in a throwaway venv, and committed as data:

    python3 -m venv /tmp/sdk && /tmp/sdk/bin/pip install sagemaker==2.257.7
    SAGEMAKER_SUPPRESS_V2_WARNING=1 /tmp/sdk/bin/python scripts/refresh_sagemaker_images.py
"""

import json
from pathlib import Path

import sagemaker
from sagemaker import image_uris

OUT = Path(__file__).resolve().parent.parent / "plugins" / "video_recommender" / "sagemaker_images.json"
SKLEARN = "1.4-2"  # the processing image for preprocess/prepare (pandas, numpy, scikit-learn)

fm_regions = sorted(image_uris.config_for_framework("factorization-machines")["versions"]["1"]["registries"])
sk_regions = sorted(image_uris.config_for_framework("sklearn")["training"]["versions"][SKLEARN]["registries"])
images = {
    "factorization-machines": {r: image_uris.retrieve("factorization-machines", r, version="1") for r in fm_regions},
    "sklearn-processing": {
        r: image_uris.retrieve(
            "sklearn", r, version=SKLEARN, py_version="py3", instance_type="ml.m5.xlarge", image_scope="training"
        )
        for r in sk_regions
    },
}
document = {"source": f"sagemaker {sagemaker.__version__} image_uris.retrieve", **images}
OUT.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
print({kind: len(regions) for kind, regions in images.items()}, "->", OUT)
