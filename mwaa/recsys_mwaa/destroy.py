"""Delete the project's CloudFormation stack(s), then, only when confirmed, the bucket they leave.

The stacks keep their bucket on deletion (``DeletionPolicy: Retain`` in source-bucket.yaml: run
data and the deployment history outlive a stack by default), so ``destroy`` finds the bucket in
the stack's outputs before deleting the stack and waits until the stack is DELETE_COMPLETE
(nested stacks go with it). The bucket is versioned: emptying it means deleting every object
version and every delete marker, which cannot be undone, so that happens only after the bucket
name has been typed at the prompt or given exactly to ``--yes-delete-bucket-contents``.
Otherwise the bucket is kept and ``destroy`` prints what remains and the command that finishes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from recsys_mwaa.deploy import DeployError

Say = Callable[[str], None]
# mwaa-environment.yaml and ec2-airflow.yaml name it SourceBucketName; source-bucket.yaml alone BucketName.
BUCKET_OUTPUTS = ("SourceBucketName", "BucketName")
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html)


class DestroyError(DeployError):
    """Destroying cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Stack:
    name: str
    stack_id: str
    bucket: str | None  # the retained bucket its outputs name, if any


@dataclass(frozen=True)
class Contents:
    versions: int
    delete_markers: int

    @property
    def total(self) -> int:
        return self.versions + self.delete_markers

    def __str__(self) -> str:
        return f"{self.versions} object versions and {self.delete_markers} delete markers"


def find_stack(cfn: Any, name: str) -> Stack:
    (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    bucket = next((outputs[k] for k in BUCKET_OUTPUTS if outputs.get(k)), None)
    return Stack(stack["StackName"], stack["StackId"], bucket)


def delete_stack(
    cfn: Any,
    stack: Stack,
    say: Say = print,
    *,
    poll_seconds: float = 15,
    timeout_seconds: float = 3 * 3600,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """DeleteStack, then wait for DELETE_COMPLETE (by stack id: a deleted stack's name is not found)."""
    say(f"deleting stack {stack.name} (and its nested stacks)")
    cfn.delete_stack(StackName=stack.stack_id)
    deadline = clock() + timeout_seconds
    last = None
    while True:
        (described,) = cfn.describe_stacks(StackName=stack.stack_id)["Stacks"]
        status = described["StackStatus"]
        if status != last:
            say(f"   {stack.name}: {status}")
            last = status
        if status == "DELETE_COMPLETE":
            return
        if status == "DELETE_FAILED" or not status.startswith("DELETE_"):
            reason = described.get("StackStatusReason") or "no reason given"
            raise DestroyError(
                f"stack {stack.name} ended {status}: {reason}; nothing was done to its bucket. See "
                f"aws cloudformation describe-stack-events --stack-name {stack.stack_id}"
            )
        if clock() > deadline:
            raise DestroyError(
                f"stack {stack.name} is still {status} after {timeout_seconds / 60:.0f} min; nothing was done to its "
                "bucket. Run destroy again once it is deleted"
            )
        sleep(poll_seconds)


STACK_ID_TAG = "aws:cloudformation:stack-id"


class NotARetainedBucket(Exception):
    """A bucket given by name that no deleted stack of ours left behind."""


def check_retained(s3: Any, cfn: Any, bucket: str) -> str:
    """The id of the deleted stack that kept ``bucket``; raise if it is not one.

    ``--bucket`` names a bucket directly, so before its every version is deleted it must
    be what ``destroy`` exists for: one CloudFormation created (it tags every resource
    with ``aws:cloudformation:stack-id``,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-resource-tags.html)
    whose stack is gone (DELETE_COMPLETE). A live environment's bucket, or anyone else's,
    is refused.
    """
    try:
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])}
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchTagSet":
            raise
        tags = {}
    stack_id = tags.get(STACK_ID_TAG)
    if not stack_id:
        raise NotARetainedBucket(f"bucket {bucket} was not created by a CloudFormation stack (no {STACK_ID_TAG} tag)")
    status = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
    if status != "DELETE_COMPLETE":
        raise NotARetainedBucket(f"bucket {bucket} belongs to stack {stack_id}, which is {status}, not deleted")
    return stack_id


def _entries(s3: Any, bucket: str) -> Iterator[list[dict]]:
    """Every object version and delete marker, a listing page at a time, as DeleteObjects keys."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        entries = [{"Key": e["Key"], "VersionId": e["VersionId"]} for e in page.get("Versions", [])]
        entries += [{"Key": e["Key"], "VersionId": e["VersionId"]} for e in page.get("DeleteMarkers", [])]
        if entries:
            yield entries


def count_contents(s3: Any, bucket: str) -> Contents:
    versions = markers = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions += len(page.get("Versions", []))
        markers += len(page.get("DeleteMarkers", []))
    return Contents(versions, markers)


def empty_and_delete_bucket(s3: Any, bucket: str, say: Say = print) -> int:
    """Delete every object version and delete marker (permanently: by version id), then the bucket.
    Lists again until a listing finds nothing, so versions written meanwhile go too."""
    deleted = 0
    while True:
        round_deleted = 0
        for entries in _entries(s3, bucket):
            for start in range(0, len(entries), DELETE_BATCH):
                batch = entries[start : start + DELETE_BATCH]
                errors = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True}).get("Errors", [])
                if errors:
                    first = errors[0]
                    raise DestroyError(
                        f"could not delete {len(errors)} versions in {bucket}, e.g. {first.get('Key')} "
                        f"{first.get('VersionId')}: {first.get('Code')}: {first.get('Message')}; the bucket is kept"
                    )
                round_deleted += len(batch)
        deleted += round_deleted
        if not round_deleted:
            break
        say(f"   {bucket}: {deleted} object versions and delete markers deleted")
    s3.delete_bucket(Bucket=bucket)
    say(f"deleted bucket {bucket}")
    return deleted
