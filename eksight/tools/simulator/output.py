"""Writing the simulated log: `audit.jsonl.gz` (one event per line) and `cwl/part-NNNNN.gz` (the same events as
CloudWatch Logs subscription payloads, each gzip'd, members concatenated the way Firehose stores records it
does not decompress), plus `labels.json`.

gzip members are written by hand (fixed header: no mtime, no file name) so the bytes depend only on the
content. Compression runs in worker threads (zlib releases the GIL); each stream is written in order by one
thread, so threading never changes the output.
"""

from __future__ import annotations

import queue
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import orjson

from eksight.core.eks import cluster_log_group
from eksight.tools.simulator.util import seeded

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no flags, mtime 0, OS unknown
PART_BYTES = 5 * 1024 * 1024  # Firehose's default S3 buffer (CDK default 5 MiB / 300 s)

Batch = tuple[list[bytes], list[int]]  # event lines and their stage timestamps (ms), as `Emitter.flush` hands them


def gzip_member(data: bytes, level: int = 6) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    body = compressor.compress(data) + compressor.flush()
    return _GZIP_HEADER + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


class _GzipStream:
    def __init__(self, path: Path, level: int) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._file.write(_GZIP_HEADER)
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
        self._crc = 0
        self._size = 0

    def write(self, data: bytes) -> None:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._file.write(self._compressor.compress(data))

    def close(self) -> None:
        self._file.write(self._compressor.flush())
        self._file.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        self._file.close()


class _Worker(threading.Thread):
    """Consumes batches from a bounded queue; an exception is re-raised by `join_checked`."""

    def __init__(self, handle: Callable[[list[bytes], list[int]], None]) -> None:
        super().__init__(daemon=True)
        self.queue: queue.Queue[Batch | None] = queue.Queue(maxsize=6)
        self.handle = handle
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is None:
                try:
                    self.handle(*item)
                except BaseException as error:  # surfaced in the main thread
                    self.error = error

    def join_checked(self) -> None:
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error


class CloudWatchParts:
    """Groups consecutive events into DATA_MESSAGE payloads of one log stream, gzips each, and rolls Firehose
    part files at PART_BYTES. A CONTROL_MESSAGE (the subscription's health check) opens the first part and
    recurs every few hours of log time."""

    def __init__(
        self, directory: Path, seed: int, account: str, cluster: str, streams: list[str], filter_name: str
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.rng = seeded(seed, "cwl")
        self.head = {"messageType": "DATA_MESSAGE", "owner": account, "logGroup": cluster_log_group(cluster)}
        self.streams = streams
        self.filters = [filter_name]
        self.head_bytes = (
            b'{"messageType":"DATA_MESSAGE","owner":'
            + orjson.dumps(account)
            + b',"logGroup":'
            + orjson.dumps(cluster_log_group(cluster))
            + b',"logStream":"%s","subscriptionFilters":'
            + orjson.dumps(self.filters)
            + b',"logEvents":['
        )
        self.part_index = 0
        self.part: BinaryIO | None = None
        self.part_size = 0
        self.pending: list[tuple[bytes, int]] = []
        self.next_control: int | None = None
        self.payload_size = self.rng.randrange(60, 450)
        self.parts = 0

    def add(self, lines: list[bytes], stamps: list[int]) -> None:
        pending = self.pending
        for line, stamp in zip(lines, stamps, strict=True):
            if self.next_control is None or stamp >= self.next_control:
                self._emit_pending()
                self._control(stamp)
            pending.append((line, stamp))
            if len(pending) >= self.payload_size:
                self._emit_pending()

    def _control(self, stamp: int) -> None:
        message = {
            "messageType": "CONTROL_MESSAGE",
            "owner": "CloudwatchLogs",
            "logGroup": "",
            "logStream": "",
            "subscriptionFilters": [],
            "logEvents": [
                {
                    "id": "",
                    "timestamp": stamp,
                    "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
                }
            ],
        }
        self._record(gzip_member(orjson.dumps(message)))
        self.next_control = stamp + self.rng.randrange(4 * 3600_000, 12 * 3600_000)

    def _emit_pending(self) -> None:
        if not self.pending:
            return
        rng = self.rng
        bits = rng.getrandbits
        # The envelope is assembled as bytes: each message is the event line as a JSON string (only `\\` and
        # `"` need escaping: orjson already escaped control characters inside the line).
        events = b",".join(
            b'{"id":"%056d","timestamp":%d,"message":"%s"}'
            % (bits(186), stamp, line.replace(b"\\", b"\\\\").replace(b'"', b'\\"'))
            for line, stamp in self.pending
        )
        head = self.head_bytes % rng.choice(self.streams).encode()
        self._record(gzip_member(head + events + b"]}", level=3))
        self.pending.clear()
        self.payload_size = rng.randrange(60, 450)

    def _record(self, member: bytes) -> None:
        if self.part is None or self.part_size >= PART_BYTES:
            if self.part is not None:
                self.part.close()
            self.part = open(self.directory / f"part-{self.part_index:05d}.gz", "wb")  # noqa: SIM115
            self.part_index += 1
            self.part_size = 0
            self.parts += 1
        self.part.write(member)
        self.part_size += len(member)

    def close(self) -> None:
        self._emit_pending()
        if self.part is not None:
            self.part.close()


class Outputs:
    """The sink `Emitter` writes sorted batches to."""

    def __init__(
        self, out: Path, seed: int, account: str, cluster: str, streams: list[str], cwl: bool, level: int = 3
    ) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.jsonl = _GzipStream(out / "audit.jsonl.gz", level)
        self.bytes = 0
        self.workers = [_Worker(self._write_jsonl)]
        self.cwl = (
            CloudWatchParts(out / "cwl", seed, account, cluster, streams, "eks-audit-to-firehose") if cwl else None
        )
        if self.cwl is not None:
            self.workers.append(_Worker(self.cwl.add))
        for worker in self.workers:
            worker.start()

    def _write_jsonl(self, lines: list[bytes], _stamps: list[int]) -> None:
        data = b"\n".join(lines) + b"\n"
        self.bytes += len(data)
        self.jsonl.write(data)

    def write(self, lines: list[bytes], stamps: list[int]) -> None:
        for worker in self.workers:
            if worker.error is not None:
                raise worker.error
            worker.queue.put((lines, stamps))

    def close(self) -> None:
        for worker in self.workers:
            worker.join_checked()
        self.jsonl.close()
        if self.cwl is not None:
            self.cwl.close()
