#!/usr/bin/env bash
# Does the SageMaker Python SDK install beside Airflow 3.3.1 under MWAA's constraints?
# (pip's resolver, dry run, into the project's .venv; needs PyPI.) Both lines fail today:
#   sagemaker 3.27.0  -> sagemaker-core 2.27.0 depends on boto3>=1.43.90 (MWAA pins 1.43.56)
#   sagemaker 2.257.7 -> depends on attrs<26 (MWAA pins 26.1.0)
# which is why sagemaker_images.json is extracted from the SDK in a throwaway venv instead.
set -u
cd "$(dirname "$0")/.."
status=0
for spec in "sagemaker==3.27.0" "sagemaker==2.257.7"; do
  if .venv/bin/python -m pip install --dry-run "$spec" -c requirements/constraints-3.3.1-py3.12.txt >/tmp/sdk-resolution.log 2>&1; then
    echo "$spec: resolves under MWAA 3.3.1's constraints"
  else
    echo "$spec: does not resolve: $(grep -E 'depends on|conflict is caused' /tmp/sdk-resolution.log | tail -1 | sed 's/^ *//')"
    status=1
  fi
done
exit $status
