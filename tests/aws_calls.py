"""Record the AWS API calls made in this process (boto3/botocore and s3fs's aiobotocore)."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Call:
    service: str  # the IAM / signing prefix, e.g. "sagemaker", "s3", "logs"
    operation: str  # e.g. "CreateTrainingJob"
    params: dict = field(hash=False, compare=False)
    asynchronous: bool = field(default=False, hash=False, compare=False)  # aiobotocore: a trigger or s3fs


PAUSED = {"on": False}


@contextlib.contextmanager
def paused() -> Generator[None, None, None]:
    """Calls a test makes itself (e.g. placing files moto does not write) are not recorded."""
    PAUSED["on"] = True
    try:
        yield
    finally:
        PAUSED["on"] = False


@contextlib.contextmanager
def recording() -> Generator[list[Call], None, None]:
    import aiobotocore.client
    import botocore.client

    calls: list[Call] = []
    sync_original = botocore.client.BaseClient._make_api_call
    async_original = aiobotocore.client.AioBaseClient._make_api_call

    def sync_call(self, operation_name, api_params):
        if not PAUSED["on"]:
            calls.append(Call(self.meta.service_model.signing_name, operation_name, dict(api_params)))
        return sync_original(self, operation_name, api_params)

    async def async_call(self, operation_name, api_params):
        if not PAUSED["on"]:
            calls.append(Call(self.meta.service_model.signing_name, operation_name, dict(api_params), True))
        return await async_original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = sync_call
    aiobotocore.client.AioBaseClient._make_api_call = async_call
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = sync_original
        aiobotocore.client.AioBaseClient._make_api_call = async_original
