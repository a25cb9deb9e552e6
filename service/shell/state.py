"""What the routes share: the settings, the question-answering object (built and loaded in a
background thread, so /healthz answers at once and /readyz says 503 until it is ready), the writer
lock, and a few worker threads for blocking work."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

import anyio

from briefing_core.errors import BriefingError, EmbedderMismatch, SystemFailure
from briefing_core.settings import Settings
from service.shell.http_errors import ServiceLoading

log = logging.getLogger("service.shell")


class ServiceState:
    """What the routes share: settings, the (lazily built) QA object, readiness, the writer lock."""

    def __init__(
        self, settings: Settings, qa: Any = None, qa_factory: Callable[[Settings], Any] | None = None
    ) -> None:
        self.settings = settings
        self.qa = qa
        self._qa_factory = qa_factory
        self.ready = threading.Event()
        self.error: str | None = None
        self.failed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # One writer at a time inside this process; ingest also takes the store's file lock.
        self.write_lock = threading.Lock()
        self.limiter: anyio.CapacityLimiter | None = None

    # -- loading ----------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        if self.ready.is_set() or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._load_loop, name="briefing-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _load_loop(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                if self.qa is None:
                    factory = self._qa_factory or default_qa_factory
                    self.qa = factory(self.settings)
                self.qa.load()
                self.qa.store.ping()
                self._warm_llm()
            except EmbedderMismatch as exc:  # needs the operator: retrying cannot help
                self.error, self.failed = self.scrub(str(exc)), True
                log.error("cannot start: %s", self.error)
                return
            except SystemFailure as exc:  # store down or locked: try again with back-off
                self.error = self.scrub(str(exc))
                log.warning("not ready yet, retrying in %.0f s: %s", delay, self.error)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            except BriefingError as exc:
                self.error, self.failed = self.scrub(str(exc)), True
                log.error("cannot start: %s", self.error)
                return
            except Exception:
                log.exception("loading the answering chain failed")
                self.error, self.failed = "loading failed; see the server log", True
                return
            self.error = None
            self.ready.set()
            log.info("ready")
            return

    def _warm_llm(self) -> None:
        """With the LLM answerer configured, load a local model now rather than on the first question.
        A failure is only logged: the chain falls back to the extractive answer."""
        if self.settings.answerer != "llm" or not hasattr(self.qa, "warm_llm"):
            return
        try:
            self.qa.warm_llm()
        except Exception as exc:
            log.warning("the LLM could not be loaded (answers fall back to extractive): %s",
                        self.scrub(str(exc)))

    def require_qa(self) -> Any:
        if self.ready.is_set():
            return self.qa
        if self.failed:
            raise ServiceLoading(f"the service could not start: {self.error}")
        raise ServiceLoading("the service is still loading its models; retry in a few seconds")

    # -- secrets never leave in a message ---------------------------------------------------
    def scrub(self, text: str) -> str:
        s = self.settings
        for secret in (s.api_key, s.admin_key, s.llm_api_key):
            value = secret.get_secret_value() if secret is not None else ""
            if len(value) >= 4 and value != "none":
                text = text.replace(value, "***")
        return text


def default_qa_factory(settings: Settings) -> Any:
    from service.engine.chain import BriefingQA

    return BriefingQA(settings)


async def run_blocking(state: ServiceState, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run blocking work in a worker thread, a few at a time (the machine has few cores)."""
    if state.limiter is None:
        state.limiter = anyio.CapacityLimiter(4)
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=state.limiter)
