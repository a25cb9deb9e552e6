"""The `llm` answerer against a real local model: SmolLM2-135M in process (llama.cpp), and the same
model behind a llama.cpp OpenAI-compatible server on loopback, started by this test run."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from ingest.pipeline import ingest
from service.engine.chain import BriefingQA
from briefing_core.settings import Settings
from tests.helpers import free_port

pytestmark = pytest.mark.llm

INVENTED = "Russia moved 500 tanks to the Chinese border in 2016 to protect Pyongyang [1]."
QUESTION = "What did Chinese TV news praise at the end of March 2017?"


def _model_path() -> str:
    try:
        import llama_cpp  # noqa: F401

        from service.engine.llm import smollm2_path

        path = smollm2_path()
    except Exception as exc:  # the model is an extra: say what is missing
        pytest.skip(f"local LLM not installed ({exc}); run `bash .ci/setup --all`")
    if not path.is_file():
        pytest.skip(f"SmolLM2 file missing at {path}")
    return str(path)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # A small prompt and a generous timeout: two shared cores make a 135M model slow, not wrong.
    s = Settings(store_dir=tmp_path_factory.mktemp("store"), answerer="llm", k=3, llm_timeout_s=180,
                 llm_max_tokens=96)
    assert ingest(s).errors == []
    return s


class WithInventedSentence(BaseChatModel):
    """Passes the question to a real model and appends a sentence no source supports."""

    inner: Any

    @property
    def _llm_type(self) -> str:
        return "with-invented-sentence"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        reply = self.inner.invoke(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(f"{reply.content} {INVENTED}"))])


def _check(result: Any, qa: BriefingQA, settings: Settings) -> None:
    texts = {r.doc_id: r.text for r in qa.store.documents()}
    assert not result.refused
    assert result.citations, "an answer always carries citations"
    for c in result.citations:
        assert texts[c.doc_id][c.start:c.end] == c.quote
    if result.answerer == "llm":
        assert all(c.support >= settings.support_threshold for c in result.citations)
    else:
        assert result.fallback, "falling back to the extractive answer always says why"


def _invented_is_caught(result: Any) -> None:
    assert "500 tanks" not in result.answer
    assert any("500 tanks" in s for s in result.unsupported)


def test_in_process_gguf_answers_and_verification_catches_an_invented_sentence(settings: Settings) -> None:
    path = _model_path()
    from service.engine.llm import LlamaCppChatModel

    model = LlamaCppChatModel(model_path=path, max_tokens=settings.llm_max_tokens)
    qa = BriefingQA(settings, llm=model).load()
    plain = qa.ask(QUESTION)
    _check(plain, qa, settings)

    qa_invent = BriefingQA(settings, llm=WithInventedSentence(inner=model)).load()
    result = qa_invent.ask(QUESTION)
    _check(result, qa_invent, settings)
    _invented_is_caught(result)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = _model_path()
    port = free_port()
    # The server logs a lot while loading; a file, unlike an unread pipe, never fills up and stalls it.
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", path, "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "4096", "--n_threads", "2"],
        stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("llama.cpp server did not start within 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_openai_compatible_server_answers_through_the_same_verification(settings: Settings, llama_server: str) -> None:
    served = settings.model_copy(update={"llm_base_url": llama_server, "llm_model": "smollm2"})
    qa = BriefingQA(served).load()
    result = qa.ask(QUESTION)
    _check(result, qa, served)

    from service.engine.llm import make_chat_model

    qa_invent = BriefingQA(served, llm=WithInventedSentence(inner=make_chat_model(served))).load()
    result = qa_invent.ask(QUESTION)
    _check(result, qa_invent, served)
    _invented_is_caught(result)
