"""Backups in S3-compatible object storage, through boto3.

Credentials come the way every AWS tool takes them (``AWS_ACCESS_KEY_ID`` and friends, a
profile, an instance role); a non-AWS endpoint (MinIO, Ceph, R2...) from
``TRUELABEL_S3_ENDPOINT_URL`` or boto3's own ``AWS_ENDPOINT_URL``. Large files go up in
multipart uploads. Every client failure becomes one :class:`BackupError` line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from truelabel_db.backup.errors import BackupError
from truelabel_db.backup.manifest import is_backup_id
from truelabel_db.extras import require

ENDPOINT_ENV = "TRUELABEL_S3_ENDPOINT_URL"
T = TypeVar("T")


class S3Storage:
    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket, self.prefix, self.client = bucket, prefix.strip("/"), client

    @classmethod
    def from_url(cls, url: str) -> "S3Storage":
        require("s3", "an s3:// backup repository")
        import boto3
        from botocore.config import Config

        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise BackupError(f"no bucket in {url!r}: use s3://bucket/prefix")
        client = boto3.client("s3", endpoint_url=os.environ.get(ENDPOINT_ENV) or None,
                              config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                            connect_timeout=10, read_timeout=60))
        return cls(bucket, prefix, client)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _call(self, what: str, action: Callable[[], T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return action()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise BackupError(f"{self.describe()}: {what} failed: {code}") from exc
        except BotoCoreError as exc:
            raise BackupError(f"{self.describe()}: {what} failed: {exc}") from exc

    def check(self) -> None:
        self._call("reaching the bucket", lambda: self.client.head_bucket(Bucket=self.bucket))

    def put_file(self, local: Path, name: str) -> None:
        self._call(f"upload of {name}", lambda: self.client.upload_file(str(local), self.bucket, self._key(name)))

    def get_file(self, name: str, local: Path) -> None:
        if not self.exists(name):
            raise BackupError(f"{name} is missing from {self.describe()}")
        local.parent.mkdir(parents=True, exist_ok=True)
        self._call(f"download of {name}", lambda: self.client.download_file(self.bucket, self._key(name), str(local)))

    def put_bytes(self, name: str, data: bytes) -> None:
        self._call(f"upload of {name}",
                   lambda: self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data))

    def get_bytes(self, name: str) -> bytes:
        if not self.exists(name):
            raise BackupError(f"{name} is missing from {self.describe()}")
        response = self._call(f"download of {name}",
                              lambda: self.client.get_object(Bucket=self.bucket, Key=self._key(name)))
        return bytes(response["Body"].read())

    def exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._call(f"looking up {name}", lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(name)))
        except BackupError as exc:
            cause = exc.__cause__
            code = cause.response.get("Error", {}).get("Code") if isinstance(cause, ClientError) else None
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _pages(self, **params: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        yield from self._call("listing", lambda: list(paginator.paginate(Bucket=self.bucket, **params)))

    def list_ids(self) -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        ids = [p["Prefix"][len(base):].rstrip("/") for page in self._pages(Prefix=base, Delimiter="/")
               for p in page.get("CommonPrefixes", [])]
        return sorted(i for i in ids if is_backup_id(i))

    def delete_backup(self, backup_id: str) -> None:
        keys = [o["Key"] for page in self._pages(Prefix=self._key(backup_id) + "/") for o in page.get("Contents", [])]
        for start in range(0, len(keys), 1000):
            batch = {"Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True}
            self._call(f"deleting {backup_id}",
                       partial(self.client.delete_objects, Bucket=self.bucket, Delete=batch))

    def free_bytes(self) -> int | None:
        return None
