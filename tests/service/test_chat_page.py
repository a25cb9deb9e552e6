"""The analyst chat page: static checks over HTTP, and a real Chromium driving it against uvicorn."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from .conftest import ADMIN_KEY, API_KEY

PROJECT = Path(__file__).resolve().parents[2]
WEB = PROJECT / "service" / "shell" / "web"
SHOTS = PROJECT / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
QUESTION = "What did Chinese TV news praise at the end of March 2017?"

XSS_DOC = (
    "Harbour memo on the Rason pilots\n\n"
    "The Rason port pilots praised the new lighthouse <script>window.__pwned=1</script> at the harbour "
    "mouth in May 2017. The memo adds that the pilots saw <img src=x onerror=\"window.__pwned=1\"> a red "
    "signal flag. See [a](javascript:window.__pwned=1) for the appendix.\n"
)
XSS_QUESTION = "What did the Rason port pilots praise?"

QUOTE_DOC = (
    "Harbour master's memo\n\n"
    "In June 2017 the Rason harbour master wrote that the new tugboats protect “the port’s vital interests.”\n\n"
    "The memo was filed in the harbour office.\n"
)
QUOTE_QUESTION = "What do the new tugboats protect, according to the Rason harbour master?"


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------------------------------
# Without a browser
# ---------------------------------------------------------------------------------------


def test_page_is_served_with_a_strict_csp(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    html = r.text
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, "no inline scripts"
    assert re.search(r"\son[a-z]+\s*=", html) is None, "no inline event handlers"
    assert "http://" not in html and "https://" not in html, "nothing loaded from elsewhere"
    for asset, kind in (("/static/app.js", "javascript"), ("/static/app.css", "text/css")):
        got = client.get(asset)
        assert got.status_code == 200 and kind in got.headers["content-type"]


def test_script_never_writes_html() -> None:
    source = (WEB / "app.js").read_text(encoding="utf-8")
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                   "javascript:"):
        assert banned not in source, banned
    css = (WEB / "app.css").read_text(encoding="utf-8")
    assert "@import" not in css and "url(http" not in css


# ---------------------------------------------------------------------------------------
# Chromium
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1320, "height": 900}, base_url=live_server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.on("console", lambda msg: "Content Security Policy" in msg.text and problems.append(msg.text))
    # Nothing may be fetched from anywhere but the service itself.
    tab.route(re.compile(r"^(?!" + re.escape(live_server.url) + r"|data:|about:).*"),
              lambda route: (problems.append(f"external request: {route.request.url}"), route.abort()))
    tab.problems = problems
    try:
        yield tab
    finally:
        context.close()
    assert not problems, problems


def enter_key(page: Any) -> None:
    """The server has an API key: the page asks for it once a call is refused."""
    page.goto("/")
    page.wait_for_selector("#key-panel:not([hidden])")
    assert "API key" in page.locator("#key-message").inner_text()
    page.fill("#key-input", API_KEY)
    page.press("#key-input", "Enter")
    page.wait_for_selector("#key-panel", state="hidden")


def ask(page: Any, question: str) -> Any:
    before = page.locator(".turn").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    turn = page.locator(".turn").nth(before)
    turn.and_(page.locator('[data-status="done"]')).wait_for(timeout=60_000)
    return turn


def rendered(locator: Any) -> str:
    """An element's text as shown, with any quotation marks its style adds before or after it."""
    return locator.evaluate(
        """el => {
          const mark = (pseudo) => {
            const c = getComputedStyle(el, pseudo).content;
            return c && c !== "none" && c !== "normal" ? JSON.parse(c) : "";
          };
          return mark("::before") + el.innerText + mark("::after");
        }"""
    )


def api_answer(server: Any, question: str) -> dict[str, Any]:
    r = httpx.post(f"{server.url}/v1/ask", json={"question": question},
                   headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60)
    r.raise_for_status()
    return r.json()


@pytest.mark.browser
def test_ask_stream_and_open_a_citation(page: Any, live_server: Any) -> None:
    expected = api_answer(live_server, QUESTION)
    enter_key(page)
    turn = ask(page, QUESTION)
    answer = turn.locator(".answer")
    assert "Pacific Fleet" in answer.inner_text()
    assert squash(answer.inner_text()) == squash(expected["answer"])
    page.screenshot(path=str(SHOTS / "01-answer.png"), full_page=True)

    turn.locator('.answer button.chip[data-n="1"]').click()
    mark = page.locator("#side mark")
    mark.wait_for()
    quote = expected["citations"][0]["quote"]
    assert squash(mark.inner_text()) == squash(quote)
    side = page.locator("#side")
    assert "Chinese TV news" in side.locator(".attribution").inner_text()
    meta = side.locator(".doc-meta").last.inner_text()
    assert "The National Interest" in meta and "English" in meta
    assert side.locator(".passage").get_attribute("lang") == "en"
    assert mark.is_visible()
    page.screenshot(path=str(SHOTS / "02-citation-panel.png"), full_page=False)

    # Copy: the answer and a numbered list of quotes.
    turn.locator("button.copy").click()
    page.wait_for_function("() => document.querySelector('.turn .copied').textContent.length > 0")
    assert page.locator(".turn .copied").first.inner_text() == "Copied"
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied.startswith(expected["answer"])
    assert f"[1] “{quote}”" in copied


@pytest.mark.browser
def test_sources_follow_up_and_refusal(page: Any, live_server: Any) -> None:
    enter_key(page)
    page.click("#sources-toggle")
    page.locator("#side .source").first.wait_for()
    sources = page.locator("#side .source")
    assert sources.count() >= 7
    izvestiya = page.locator('#side .source[data-source="izvestiya-missile-defense"]')
    assert "quoted only" in izvestiya.inner_text()
    original = izvestiya.locator(".source-original")
    assert original.inner_text() == "Генштаб: система ПРО США угрожает ядерным силам РФ и КНР"
    assert original.get_attribute("lang") == "ru"
    article = page.locator('#side .source[data-source="how-russia-could-help-solve-the-north-korea-crisis"]')
    assert "full text" in article.inner_text()
    page.screenshot(path=str(SHOTS / "03-sources.png"))

    # Shift+Enter is a new line, not a question.
    page.fill("#question", "first line")
    page.press("#question", "Shift+Enter")
    page.keyboard.type("second line")
    assert page.input_value("#question") == "first line\nsecond line"
    assert page.locator(".turn").count() == 0

    first = "What did Finance and Economics conclude at the end of 2014?"
    ask(page, first)
    with page.expect_request("**/v1/ask/stream") as sent:
        ask(page, "What did it conclude?")
    body = sent.value.post_data_json
    assert body["history"][0] == {"role": "user", "content": first}
    assert body["history"][1]["role"] == "assistant" and "[1]" in body["history"][1]["content"]

    refusal = ask(page, "Who won the 2018 football world cup?")
    reply = refusal.locator(".reply")
    assert "refused" in (reply.get_attribute("class") or "")
    assert "Not in the sources" in reply.inner_text()
    assert "The sources do not say" in reply.inner_text()
    assert refusal.locator("button.chip").count() == 0
    refusal.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "04-follow-up-and-refusal.png"))


@pytest.mark.browser
def test_hostile_document_text_stays_text(page: Any, live_server: Any) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    r = httpx.post(f"{live_server.url}/v1/ingest", headers=admin, timeout=60,
                   files={"files": ("harbour-memo.txt", XSS_DOC.encode(), "text/plain")})
    assert r.status_code == 200 and r.json()["doc_ids"] == ["harbour-memo"], r.text
    try:
        enter_key(page)
        turn = ask(page, XSS_QUESTION)
        assert "<script>window.__pwned=1</script>" in turn.locator(".answer").inner_text()
        chip = turn.locator('.answer button.chip[data-doc="harbour-memo"]').first
        chip.click()
        page.locator("#side mark").wait_for()
        assert "<script>window.__pwned=1</script>" in page.locator("#side mark").inner_text()
        passage = page.locator("#side .passage").inner_text()
        assert '<img src=x onerror="window.__pwned=1">' in passage
        assert "[a](javascript:window.__pwned=1)" in passage
        page.screenshot(path=str(SHOTS / "05-hostile-text.png"))

        assert page.evaluate("() => typeof window.__pwned") == "undefined"
        assert page.locator("#messages script, #side script").count() == 0
        assert page.locator("#messages img, #side img").count() == 0
        assert page.locator('a[href^="javascript:"]').count() == 0
    finally:
        httpx.delete(f"{live_server.url}/v1/documents/harbour-memo", headers=admin, timeout=30)


@pytest.mark.browser
def test_a_quote_ending_with_a_closing_mark_shows_it_once(page: Any, live_server: Any) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    r = httpx.post(f"{live_server.url}/v1/ingest", headers=admin, timeout=60,
                   files={"files": ("tugboat-memo.txt", QUOTE_DOC.encode(), "text/plain")})
    assert r.status_code == 200 and r.json()["doc_ids"] == ["tugboat-memo"], r.text
    try:
        expected = api_answer(live_server, QUOTE_QUESTION)
        cited = [c for c in expected["citations"] if c["quote"].endswith("interests.”")]
        assert cited, expected  # the case under test: the quote itself ends with ”
        n, quote = cited[0]["n"], cited[0]["quote"]
        enter_key(page)
        turn = ask(page, QUOTE_QUESTION)
        shown = rendered(turn.locator(f'.cite:has(button.chip[data-n="{n}"]) .cite-quote'))
        assert shown == "“" + quote, shown
        assert shown.endswith("interests.”") and not shown.endswith("””")
        turn.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "06-quote-with-its-own-closing-mark.png"))

        turn.locator("button.copy").click()
        page.wait_for_function("() => document.querySelector('.turn .copied').textContent.length > 0")
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert f"[{n}] “{quote} — " in copied and "””" not in copied, copied
    finally:
        httpx.delete(f"{live_server.url}/v1/documents/tugboat-memo", headers=admin, timeout=30)


@pytest.mark.browser
def test_api_docs_page_renders_offline(page: Any) -> None:
    """/docs draws every route from the service's own files: the fixture aborts (and fails on) any
    request that leaves the service, which FastAPI's default page makes to a CDN."""
    page.goto("/docs")
    page.wait_for_selector(".opblock")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/v1/ask" in [p.strip().replace("\u200b", "") for p in paths]
    assert "Briefing QA" in page.locator(".info .title").inner_text()
    page.screenshot(path=str(SHOTS / "api-docs.png"))
