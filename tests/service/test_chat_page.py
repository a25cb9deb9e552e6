"""The analyst chat page: static checks over HTTP, and a real Chromium driving it against uvicorn."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.shell.app import create_app

from .conftest import ADMIN_KEY, API_KEY, ARCTIC_MANIFEST, LiveServer, make_settings, serving, with_briefings

PROJECT = Path(__file__).resolve().parents[2]
WEB = PROJECT / "service" / "shell" / "web"
SHOTS = PROJECT / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
QUESTION = "What did Chinese TV news praise at the end of March 2017?"
AUTH = {"Authorization": f"Bearer {API_KEY}"}

# A store of two briefings: the bundled one and the test fixture's article on Arctic shipping.
KOREA = "north-korea-russia-2017"
ARCTIC = "arctic-shipping-2024"
ARCTIC_QUESTION = "Which Project 22220 icebreakers entered service between 2020 and 2022?"
ARCTIC_FOLLOW_UP = (
    "What does the Polar Shipping Studies article conclude about the Northern Sea Route and the Suez Canal?"
)

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


@contextlib.contextmanager
def open_tab(browser: Any, server: Any) -> Iterator[Any]:
    """A fresh browser context (its own sessionStorage) with one tab on `server`; fails on page errors,
    CSP reports and requests anywhere else."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1320, "height": 900}, base_url=server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.on("console", lambda msg: "Content Security Policy" in msg.text and problems.append(msg.text))
    # Nothing may be fetched from anywhere but the service itself.
    tab.route(re.compile(r"^(?!" + re.escape(server.url) + r"|data:|about:).*"),
              lambda route: (problems.append(f"external request: {route.request.url}"), route.abort()))
    tab.problems = problems
    try:
        yield tab
    finally:
        context.close()
    assert not problems, problems


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    with open_tab(browser, live_server) as tab:
        yield tab


@pytest.fixture(scope="module")
def two_briefings_server(tmp_path_factory: pytest.TempPathFactory, loaded_qa: Any) -> Iterator[LiveServer]:
    """A real server on a store of two briefings (the bundled one, then the Arctic fixture), with an
    API key; it shares the loaded embedder instead of loading the models again."""
    from service.engine.chain import BriefingQA

    embedder = loaded_qa.searcher.embedder
    settings = with_briefings(make_settings(tmp_path_factory.mktemp("two-briefings-store"), api_key=API_KEY,
                                            rate_limit_per_minute=600), embedder, ARCTIC_MANIFEST)
    with serving(create_app(settings, qa=BriefingQA(settings, embedder=embedder))) as server:
        yield server


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
    # One briefing in the store: no picker, and questions go without a scope, as before.
    assert "briefing" not in body
    assert page.locator("#scope").is_hidden()

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


def sent_body(page: Any, question: str) -> tuple[dict[str, Any], Any]:
    """Ask through the page; the JSON body it sent to /v1/ask/stream and the finished turn."""
    with page.expect_request("**/v1/ask/stream") as sent:
        turn = ask(page, question)
    return sent.value.post_data_json, turn


@pytest.mark.browser
def test_briefing_picker_scopes_the_conversation(browser: Any, two_briefings_server: LiveServer) -> None:
    server = two_briefings_server
    listed = httpx.get(f"{server.url}/v1/briefings", headers=AUTH, timeout=30)
    listed.raise_for_status()
    briefings = {b["id"]: b for b in listed.json()["briefings"]}
    assert set(briefings) == {KOREA, ARCTIC}
    titles = {bid: b["title"] for bid, b in briefings.items()}
    arctic_sources = httpx.get(f"{server.url}/v1/sources", params={"briefing": ARCTIC}, headers=AUTH,
                               timeout=30)
    arctic_sources.raise_for_status()
    arctic_source_ids = {s["source_id"] for s in arctic_sources.json()}

    with open_tab(browser, server) as page:
        enter_key(page)
        # The picker: every briefing by its article's title, and all of them together (the default).
        picker = page.get_by_label("Briefing", exact=True)
        picker.wait_for()
        options = picker.locator("option")
        values = [o.get_attribute("value") for o in options.all()]
        assert values[0] == "" and sorted(values[1:]) == sorted([KOREA, ARCTIC]), values
        assert options.first.inner_text() == "All briefings"
        for bid in (KOREA, ARCTIC):
            assert titles[bid] in picker.locator(f'option[value="{bid}"]').inner_text()
        assert picker.input_value() == ""
        assert page.locator("#empty-title").inner_text() == "Ask about all 2 briefings"

        # Chosen with the keyboard: the heading, the picker's line and the sources follow it.
        picker.focus()
        picker.select_option(ARCTIC)
        assert page.locator("#empty-title").inner_text() == f"Ask about “{titles[ARCTIC]}”"
        assert ARCTIC in page.locator("#briefing-meta").inner_text()
        assert page.locator("#examples").is_hidden()  # they are about the other briefing
        page.click("#sources-toggle")
        page.locator("#side .source").first.wait_for()
        shown = page.locator("#side .source")
        assert {shown.nth(i).get_attribute("data-source") for i in range(shown.count())} == arctic_source_ids
        assert {shown.nth(i).get_attribute("data-briefing") for i in range(shown.count())} == {ARCTIC}
        assert page.locator("#side .group-title").all_inner_texts() == [titles[ARCTIC]]
        assert page.locator('#side .source[data-source="izvestiya-missile-defense"]').count() == 0
        page.screenshot(path=str(SHOTS / "07-briefing-picker-and-sources.png"))

        # A question of the conversation carries its briefing; every citation is of that briefing.
        body, turn = sent_body(page, ARCTIC_QUESTION)
        assert body["briefing"] == ARCTIC
        assert "Arktika" in turn.locator(".answer").inner_text()
        cites = turn.locator(".cite")
        assert cites.count() > 0
        assert {cites.nth(i).get_attribute("data-briefing") for i in range(cites.count())} == {ARCTIC}
        assert not turn.locator(".cite-briefing").first.is_visible()  # one briefing asked: no tags

        # A reload keeps the conversation and its briefing; the follow-up goes with both.
        page.reload()
        picker.wait_for()
        assert picker.input_value() == ARCTIC
        assert page.locator(".turn").count() == 1
        assert "Arktika" in page.locator(".turn .answer").inner_text()
        body, turn = sent_body(page, ARCTIC_FOLLOW_UP)
        assert body["briefing"] == ARCTIC
        assert [t["role"] for t in body["history"]] == ["user", "assistant"]
        assert body["history"][0]["content"] == ARCTIC_QUESTION
        assert "seasonal" in turn.locator(".answer").inner_text()
        cites = turn.locator(".cite")
        assert {cites.nth(i).get_attribute("data-briefing") for i in range(cites.count())} <= {ARCTIC}

        # Another choice mid-conversation starts a new conversation, and says so.
        picker.select_option("")
        status = page.locator("#status")
        assert "new conversation" in status.inner_text().lower() and "all briefings" in status.inner_text()
        assert page.locator(".turn").count() == 0
        assert page.locator("#empty-title").inner_text() == "Ask about all 2 briefings"
        page.click("#sources-toggle")
        page.locator("#side .source-group").nth(1).wait_for()
        groups = page.locator("#side .source-group")
        grouped = sorted(groups.nth(i).get_attribute("data-briefing") for i in range(groups.count()))
        assert grouped == [ARCTIC, KOREA]
        for i in range(groups.count()):
            group = groups.nth(i)
            bid = group.get_attribute("data-briefing")
            assert group.locator(".group-title").inner_text() == titles[bid]
            inside = group.locator(".source")
            assert {inside.nth(j).get_attribute("data-briefing") for j in range(inside.count())} == {bid}
        page.click("#side-close")

        # All briefings: no scope is sent, and each citation names its briefing.
        body, turn = sent_body(page, QUESTION)
        assert "briefing" not in body and body["history"] == []
        assert status.is_hidden()
        tags = turn.locator(".cite .cite-briefing")
        assert tags.count() > 0
        for i in range(tags.count()):
            tag = tags.nth(i)
            assert tag.is_visible()
            assert tag.inner_text() == titles[tag.get_attribute("data-briefing")]
        assert titles[KOREA] in tags.all_inner_texts()
        turn.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "08-all-briefings-citation-tags.png"))

        page.reload()
        picker.wait_for()
        assert picker.input_value() == ""
        assert page.locator(".turn .cite-briefing").first.is_visible()

        # "New conversation" keeps the briefing the picker shows.
        picker.select_option(ARCTIC)
        page.click("#new-conversation")
        assert picker.input_value() == ARCTIC and page.locator(".turn").count() == 0
        page.reload()
        picker.wait_for()
        assert picker.input_value() == ARCTIC


@pytest.mark.browser
def test_without_the_briefings_route_the_page_asks_as_before(
    browser: Any, two_briefings_server: LiveServer
) -> None:
    """An older service (no /v1/briefings): no picker, and the questions go without a scope."""
    with open_tab(browser, two_briefings_server) as page:
        page.route("**/v1/briefings", lambda route: route.fulfill(
            status=404, content_type="application/json", body='{"error": "not found", "request_id": "x"}'))
        enter_key(page)
        body, turn = sent_body(page, QUESTION)
        assert "briefing" not in body
        assert "Pacific Fleet" in turn.locator(".answer").inner_text()
        assert page.locator("#scope").is_hidden()
        assert page.locator("#empty-title").inner_text() == "Ask about the briefing"
        assert not turn.locator(".cite-briefing").first.is_visible()
