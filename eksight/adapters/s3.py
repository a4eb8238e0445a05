"""Archive objects in and quarantined records out.

`S3ObjectReader.open` hands the decoder the ``GetObject`` body as a file-like stream (the decoder reads it in
1 MiB chunks), so an object is never held in memory whole. A failure while reading the body (connection reset,
short read, timeout) surfaces as an ``OSError``, which the decoder turns into one ``unreadable`` record; the
pipeline then fails the object so the message is retried rather than half-processed.

`FindingArchiveWriter` writes every finding of an object (all severities, the ledger's running totals) as gzip
JSON lines under ``findings/`` at the source key's partitions: the Athena table ``findings`` and `eksight hunt`
read them. One object per source object, so a retried object overwrites its own findings.

`QuarantineWriter` writes the records the detector could not use as gzip JSON lines (``source``, ``offset``,
``reason``, ``detail``, ``sample``) under ``quarantine/``, at the source key's path (``audit/`` replaced), with
the exact counts per reason in the object metadata (the kept records are capped, the counts are not).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import quote

import msgspec

from eksight.core.archive_layout import findings_key, quarantine_key
from eksight.core.findings import Finding, to_json_line

if TYPE_CHECKING:  # the decoder is imported with the detector's first object, not at its cold start
    from eksight.core.decode import Quarantined

METADATA_VALUE_MAX = 1024  # S3 user metadata is at most 2 KB in all; keep each value well within it


class _Body(io.RawIOBase):
    """A GetObject body whose read errors are OSErrors (botocore raises its own exception types)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._body.read(None if size is None or size < 0 else size)
            return data
        except OSError:
            raise
        except Exception as error:
            raise OSError(f"reading the object failed: {type(error).__name__}: {error}") from error

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


class S3ObjectReader:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @contextmanager
    def open(self, key: str, version_id: str | None = None) -> Iterator[BinaryIO]:
        """The object's body as a stream. A missing object raises the client's ``ClientError`` (NoSuchKey)."""
        params = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        body = _Body(self.client.get_object(**params)["Body"])
        try:
            yield cast(BinaryIO, body)  # a raw binary stream: the decoder only calls read()
        finally:
            body.close()

    def source(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


_ENCODER = msgspec.json.Encoder()


def quarantine_lines(records: Sequence[Quarantined]) -> Iterator[bytes]:
    for record in records:
        yield (
            _ENCODER.encode(
                {
                    "source": record.source,
                    "offset": record.offset,
                    "reason": record.reason,
                    "detail": record.detail,
                    "sample": record.sample.decode("utf-8", "backslashreplace"),
                }
            )
            + b"\n"
        )


def put_json_lines(
    client: Any, bucket: str, key: str, lines: Iterable[bytes], source_key: str, metadata: Mapping[str, str]
) -> None:
    """`lines` as one gzip JSON-lines object derived from the archive object `source_key` (named in its metadata).
    mtime 0 in the gzip header: the same lines give the same bytes, so a retried object rewrites it identically."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as sink:
        for line in lines:
            sink.write(line)
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=buffer.getvalue(),
        ContentType="application/x-ndjson",
        Metadata={"eksight-source-key": _metadata(quote(source_key, safe="/=")), **metadata},
    )


class QuarantineWriter:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def write(self, source_key: str, records: Sequence[Quarantined], counts: Mapping[str, int]) -> str | None:
        """Write `records` (the kept ones) with `counts` (all, by reason); returns the key, or None when
        there is nothing to write."""
        total = sum(counts.values())
        if not records and not total:
            return None
        reasons = ",".join(f"{reason}={n}" for reason, n in sorted(counts.items()))
        key = quarantine_key(source_key)
        metadata = {
            "eksight-records": str(total),
            "eksight-kept": str(len(records)),
            "eksight-reasons": _metadata(reasons),
        }
        put_json_lines(self.client, self.bucket, key, quarantine_lines(records), source_key, metadata)
        return key


def _metadata(value: str) -> str:
    return value if len(value) <= METADATA_VALUE_MAX else value[: METADATA_VALUE_MAX - 3] + "..."


class FindingArchiveWriter:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def write(self, source_key: str, findings: Sequence[Finding]) -> str | None:
        """Write `findings` as gzip JSON lines; returns the key, or None when there are none."""
        if not findings:
            return None
        key = findings_key(source_key)
        lines = (to_json_line(finding) for finding in findings)
        put_json_lines(self.client, self.bucket, key, lines, source_key, {"eksight-findings": str(len(findings))})
        return key
