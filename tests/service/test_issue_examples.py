"""The analyst's examples that showed the nearest-sentence answerer's limits, asked through
`POST /v1/ask` as an analyst's client would. (The second-briefing and unrelated-documents examples are
in test_engine_scale.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient


def ask(client: TestClient, question: str) -> dict[str, Any]:
    response = client.post("/v1/ask", json={"question": question})
    assert response.status_code == 200, response.text
    return response.json()


def quotes(body: dict[str, Any]) -> str:
    return " ".join(c["quote"] for c in body["citations"])


def test_a_two_sentence_summary_is_the_thesis_not_one_sentence(client: TestClient) -> None:
    body = ask(client, "Summarize the article's argument in two sentences.")
    assert not body["refused"] and body["question_kind"] == "summary"
    assert len(body["citations"]) == 2
    assert "Pyongyang might trust Moscow more than it trusts Beijing" in quotes(body)
    assert "Trump administration" not in body["answer"]


def test_the_reasons_come_with_the_sentence_announcing_them(client: TestClient) -> None:
    body = ask(client, "What are the main reasons Russia opposes North Korean nuclear weapons?")
    assert not body["refused"]
    cited = quotes(body)
    for reason in ("nuclear superpower", "UN Security Council", "Russian Far East"):
        assert reason in cited, body["answer"]


@pytest.mark.xfail(strict=True, reason="engine bug: the Chinese sentence is cited together with the "
                                       "Western-media sentence before it")
def test_chinese_media_view_is_the_chinese_not_the_western_one(client: TestClient) -> None:
    body = ask(client, "How did Chinese media view Russia's role on the Korean Peninsula?")
    assert not body["refused"]
    assert "Chinese interpretations have been decidedly more welcoming" in body["citations"][0]["quote"]
    assert "Western media" not in quotes(body)


def test_listing_the_sources_lists_all_six(client: TestClient) -> None:
    body = ask(client, "List all the sources cited in the article.")
    assert not body["refused"] and body["question_kind"] == "sources"
    for outlet in ("Global Times", "Finance and Economics", "Chinese TV news", "Izvestiya",
                   "Russian military press", "Northeast Asia Forum"):
        assert outlet in body["answer"]
    assert len(body["citations"]) == 6


@pytest.mark.parametrize("question", ["Does the author recommend sanctions?",
                                      "What sanctions does the author propose against North Korea?"])
def test_what_the_author_never_says_is_refused(client: TestClient, question: str) -> None:
    body = ask(client, question)
    assert body["refused"], body["answer"]
    assert body["citations"] == [] and "do not say" in body["answer"]
