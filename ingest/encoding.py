"""Embedding for ingest, one window ahead of the store writes.

Chroma's local client holds the GIL for the whole of a write, and the packaged embedders are single
threaded numpy, so in one process a window's writes and the next window's encoding take turns on one
core while the other idles. `ForkedEncoder` encodes in a forked child (which inherits the loaded
model, so there is nothing to load) while this process chunks, diffs and writes.

Both encoders have one shape: `submit(texts)` then `result()`, first in first out, one window in
flight. The child never touches the store, so a crash anywhere cannot corrupt it; if the child dies,
the window it held is encoded here and the rest of the run stays in this process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import warnings
from collections import deque
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _encode(embedder: Any, texts: list[str], batch: int) -> np.ndarray:
    out: list[list[float]] = []
    for i in range(0, len(texts), batch):
        out.extend(embedder.embed_documents(texts[i : i + batch]))
    return np.asarray(out, dtype=np.float32).reshape(len(texts), -1) if out else np.zeros((0, 0), np.float32)


class InlineEncoder:
    """Encodes in this process, when the result is asked for."""

    forked = False

    def __init__(self, embedder: Any, batch: int) -> None:
        self.embedder = embedder
        self.batch = batch
        self._queue: deque[list[str]] = deque()

    def submit(self, texts: list[str]) -> None:
        self._queue.append(list(texts))

    def result(self) -> np.ndarray:
        return _encode(self.embedder, self._queue.popleft(), self.batch)

    def close(self) -> None:
        self._queue.clear()


class EncoderFailed(RuntimeError):
    """The embedder raised in the child; the message is the child's."""


class ForkedEncoder:
    """Encodes in a forked child process, one window at a time, while the parent works."""

    forked = True

    def __init__(self, embedder: Any, batch: int) -> None:
        import multiprocessing

        self.embedder = embedder
        self.batch = batch
        self._queue: deque[list[str]] = deque()
        self._broken = False
        ctx = multiprocessing.get_context("fork")
        self._conn, child_end = ctx.Pipe()
        self._process = ctx.Process(
            target=_child_main, args=(child_end, self._conn, embedder, batch), daemon=True,
            name="briefing-encoder",
        )
        with warnings.catch_warnings():
            # Python 3.12 warns on any fork of a process with threads (here Chroma's own). The child
            # only runs the embedder, whose lock it replaces, and never the store or those threads.
            warnings.filterwarnings(
                "ignore", message=".*use of fork\\(\\) may lead to deadlocks", category=DeprecationWarning
            )
            self._process.start()
        child_end.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def submit(self, texts: list[str]) -> None:
        texts = list(texts)
        self._queue.append(texts)
        if not self._broken:
            try:
                self._conn.send(texts)
            except (OSError, EOFError):
                self._give_up("could not hand it a window")

    def result(self) -> np.ndarray:
        texts = self._queue.popleft()
        if not self._broken:
            try:
                kind, payload = self._conn.recv()
            except (OSError, EOFError):
                self._give_up("it exited without an answer")
            else:
                if kind == "ok":
                    return payload
                raise EncoderFailed(payload)
        return _encode(self.embedder, texts, self.batch)

    def _give_up(self, why: str) -> None:
        # The windows already sent are still in the queue, so each is encoded here instead.
        self._process.join(timeout=2)  # a closed pipe comes a moment before the exit code
        code = self._process.exitcode
        log.warning("ingest encoder process stopped (%s, exit code %s); encoding in this process", why, code)
        self._broken = True
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)


def _child_main(conn: Any, parent_end: Any, embedder: Any, batch: int) -> None:
    # Only the parent's end must stay open in the parent: with our copy closed, the parent's exit
    # (or death) shows here as end-of-file.
    parent_end.close()
    _die_with_parent()
    # Ctrl-C reaches the whole process group; the parent decides what an interrupt means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reset = getattr(embedder, "after_fork", None)
    if reset:
        reset()
    while True:
        try:
            texts = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", _encode(embedder, texts, batch))
        except Exception as exc:  # handed to the parent, which raises it in the ingest
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (OSError, EOFError):
            return


def _die_with_parent() -> None:
    """Linux: a SIGKILL of the parent kills the child too, so no orphan keeps encoding (or keeps the
    inherited store-lock descriptor open)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(0)


def can_fork(embedder: Any) -> bool:
    """Whether encoding may move to a forked child: the platform forks, there is a second CPU to run
    it on, and the embedder says its library survives a fork (numpy does; OpenMP and torch thread pools
    may hang in a child)."""
    if not hasattr(os, "fork") or not getattr(embedder, "fork_safe", False):
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return cpus >= 2


__all__ = ["EncoderFailed", "ForkedEncoder", "InlineEncoder", "can_fork"]
