"""The uploader: the process server's cache, sealed, into the cache storage account.

Each disk's differentials go up in sequence order, one at a time per disk (the worker applies
them in that order), several disks at once. A differential is sealed (zstd, then AES-GCM with
the vault's replication key) and uploaded as a block blob named so that a listing of one disk
gives its order; it leaves the cache only after the upload is confirmed. A failed upload is
retried with backoff; nothing is skipped, since a gap would break the disk's change stream.

Blob names (docs/data-path.md): `<vm id>/<stream>/<first seq:016d>-<last seq:016d>.log` in
the container `CACHE_CONTAINER`; control records as `manifests/<vm id>/<name>.json`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from azure.core.exceptions import ResourceExistsError

from lab.kit import wire

from .cache import CacheItem, DurableCache

log = logging.getLogger(__name__)

CACHE_CONTAINER = "asr-cache"
MANIFEST_DISK = "_manifests"  # the cache stream that holds manifests instead of logs
BACKOFF = (0.2, 0.5, 1, 2, 5)


def log_blob_name(item: CacheItem) -> str:
    return f"{item.vm}/{item.disk}/{item.first_seq:016d}-{item.last_seq:016d}.log"


class Throughput:
    """Bytes per second over a sliding window of wall time."""

    def __init__(self, window: float = 30.0):
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()
        self.total = 0

    def add(self, nbytes: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._samples.append((now, nbytes))
            self.total += nbytes
            self._trim(now)

    def rate(self) -> float:
        with self._lock:
            now = time.monotonic()
            self._trim(now)
            if not self._samples:
                return 0.0
            span = max(now - self._samples[0][0], 1.0)
            return sum(n for _, n in self._samples) / span

    def _trim(self, now: float) -> None:
        while self._samples and now - self._samples[0][0] > self.window:
            self._samples.popleft()


class Uploader:
    def __init__(self, cache: DurableCache, container_client, key_source, threads: int = 4):
        """`key_source()` returns the 32-byte replication key (known after registration)."""
        self.cache = cache
        self.container = container_client
        self.key_source = key_source
        self.threads = threads
        self.throughput = Throughput()
        self.stop_event = threading.Event()
        self.wakeup = threading.Event()
        self.last_error: str | None = None
        self.uploaded_bytes = 0
        self._busy: set[tuple[str, str]] = set()
        self._container_ready = False
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def start(self) -> Uploader:
        for i in range(self.threads):
            t = threading.Thread(target=self._work, name=f"uploader-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.wakeup.set()
        # An upload cut short stays in the cache and is done again at the next start.
        deadline = time.monotonic() + 2.0
        for t in self._workers:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    def notify(self) -> None:
        self.wakeup.set()

    @property
    def backlog_bytes(self) -> int:
        return self.cache.used_bytes

    # -- workers ------------------------------------------------------------------------------
    def _claim(self) -> CacheItem | None:
        """The oldest item of a stream no other worker is uploading."""
        with self._lock:
            heads: dict[tuple[str, str], CacheItem] = {}
            for item in self.cache.pending():
                heads.setdefault((item.vm, item.disk), item)
            for stream, item in heads.items():
                if stream not in self._busy:
                    self._busy.add(stream)
                    return item
        return None

    def _release(self, item: CacheItem) -> None:
        with self._lock:
            self._busy.discard((item.vm, item.disk))

    def _work(self) -> None:
        attempt = 0
        while not self.stop_event.is_set():
            item = self._claim()
            if item is None:
                self.wakeup.wait(0.5)
                self.wakeup.clear()
                continue
            try:
                self._upload(item)
                attempt = 0
                self.last_error = None
            except Exception as exc:  # storage down, token refused...: keep it and retry
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("upload of %s failed (will retry): %s", item.key, exc)
                self.stop_event.wait(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
            finally:
                self._release(item)

    def _ensure_container(self) -> None:
        # Lazily, from a worker: the storage account may start after the process server.
        if self._container_ready:
            return
        try:
            self.container.create_container()
        except ResourceExistsError:
            pass
        self._container_ready = True

    def _upload(self, item: CacheItem) -> None:
        self._ensure_container()
        data = self.cache.read(item)
        if item.disk == MANIFEST_DISK:
            name = f"manifests/{item.vm}/{_record_name(data)}.json"
            body = data
        else:
            key = self.key_source()
            if key is None:
                raise RuntimeError("no replication key yet (not registered)")
            name = log_blob_name(item)
            body = wire.seal(data, key)
        self.container.upload_blob(name, body, overwrite=True)
        # Only now is it safe to forget: the cache storage account has it.
        self.cache.remove(item)
        self.uploaded_bytes += len(body)
        self.throughput.add(len(body))


def _record_name(data: bytes) -> str:
    import json

    return json.loads(data)["name"]
