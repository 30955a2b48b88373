"""The research console in a real headless Chromium (the OS package, driven by Playwright)
against the real service under uvicorn with the scripted model: ask, watch, cite, stop,
reload, follow up, corpus (with the last indexing run's skipped files), hostile text,
Chinese, two API keys. Screenshots land in build/console-screenshots/."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from retrieval.indexing.job import run_index_job
from retrieval.indexing.job_types import IndexConfig
from testing.embedder import HashEmbedder
from testing.scripted import ScriptedModelServer
from tests.console_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FOLLOW_UP,
    MEASURE,
    SCREENSHOTS,
    SLOW,
    SLOW_REASONING,
    STOPPABLE,
    TWO_HOP,
    XSS_ANSWER,
    XSS_PASSAGE,
    XSS_Q,
    ZH_Q,
    ZH_TEXT,
    DroppingProxy,
    chromium_available,
    console_turn,
    write_console_passages,
)
from tests.test_service_support import ThreadServer, service_settings, sse_events

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not chromium_available(),
        reason="needs /usr/bin/chromium (apt-get install chromium) and playwright "
        "(the dev extra); scripts/test.sh installs both",
    ),
]

if chromium_available():
    from playwright.sync_api import Browser, Page, expect, sync_playwright

TIMEOUT = 15_000  # ms, per wait


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModelServer]:
    server = ScriptedModelServer(console_turn, latency=0.01)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(model: ScriptedModelServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("console")
    passages = write_console_passages(tmp / "console-passages.jsonl")
    settings = service_settings(tmp, model.base_url, memory_passages=passages)
    with ThreadServer(settings) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, service: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(TIMEOUT)
    pg.goto(service + "/")
    yield pg
    context.close()
    assert not errors, f"the page raised: {errors}"


def ask(page: Page, question: str) -> None:
    page.fill("#question", question)
    page.press("#question", "Enter")


def last_turn(page: Page, status: str = "success") -> Any:
    turn = page.locator(f".turn[data-status={status}]").last
    expect(turn).to_be_visible()
    return turn


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def current_thread(page: Page) -> str:
    return str(page.evaluate("decodeURIComponent(location.hash.slice(4))"))


def test_two_hop_question_citations_and_follow_up(page: Page, service: str) -> None:
    ask(page, TWO_HOP)
    turn = last_turn(page)
    expect(turn.locator(".q")).to_have_text(TWO_HOP)
    searches = turn.locator(".tool-search")
    expect(searches).to_have_count(2)
    expect(searches.nth(0).locator(".tool-arg")).to_have_text("capital of Freedonia")
    expect(searches.nth(1).locator(".tool-arg")).to_have_text("Sylvania City founded traders")
    expect(searches.nth(1).locator(".hit-title").first).to_contain_text("Sylvania City")
    expect(searches.nth(1).locator(".hit-source").first).to_have_text("sylvania-city.md")
    reasoning = turn.locator(".reasoning-text")
    expect(reasoning.nth(0)).to_have_text("First I need the capital of Freedonia.")
    expect(reasoning.nth(1)).to_contain_text("who founded Sylvania City?")
    answer = turn.locator(".answer")
    expect(answer).to_contain_text("founded in 1712 by river traders")
    chips = answer.locator(".chip")
    expect(chips).to_have_count(2)
    expect(turn.locator(".usage")).to_contain_text("3 steps · 2 tool calls")
    expect(turn.locator(".usage")).to_contain_text("tokens")
    # The second chip cites the founding passage: the panel marks exactly that passage.
    chips.nth(1).click()
    panel = page.locator("#panel")
    expect(panel.locator("mark.cited")).to_have_text(
        "Sylvania City was founded in 1712 by river traders."
    )
    expect(panel.locator(".src-title")).to_have_text("Sylvania City")
    expect(panel.locator(".meta")).to_contain_text("sylvania-city.md")
    expect(panel.locator(".passage.neighbour")).to_contain_text("floods every spring")
    page.evaluate("document.querySelector('#conversation').scrollTop = 1e6")
    shot(page, "console-answer-with-source")
    panel.get_by_role("button", name="Open the whole document").click()
    expect(panel.locator(".document mark.cited")).to_have_text(
        "Sylvania City was founded in 1712 by river traders."
    )
    expect(panel.locator(".document")).to_contain_text("which floods every spring")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()

    # Shift+Enter is a new line, not a send; Enter then sends the follow-up to the thread.
    thread = current_thread(page)
    page.fill("#question", "Thinking of it:")
    page.press("#question", "Shift+Enter")
    page.type("#question", FOLLOW_UP)
    expect(page.locator("#question")).to_have_value(f"Thinking of it:\n{FOLLOW_UP}")
    expect(page.locator(".turn")).to_have_count(1)
    page.press("#question", "Enter")
    expect(page.locator(".turn[data-status=success]")).to_have_count(2)
    expect(page.locator(".turn").nth(1).locator(".answer")).to_contain_text("floods every spring")
    assert current_thread(page) == thread
    runs = httpx.get(f"{service}/threads/{thread}/runs").json()
    assert len(runs) == 2
    expect(page.locator(f'.thread[data-thread="{thread}"]')).to_have_count(1)


def test_reload_mid_run_rejoins_without_duplicates(page: Page) -> None:
    ask(page, SLOW)
    reasoning = page.locator(".turn .reasoning-text").first
    expect(reasoning).to_contain_text("marmot-thought-03")
    shot(page, "console-streaming")
    page.reload()
    turn = last_turn(page)
    expect(page.locator(".turn")).to_have_count(1)
    expect(turn.locator(".q")).to_have_text(SLOW)
    expect(turn.locator(".reasoning-text")).to_have_text(SLOW_REASONING)
    expect(turn.locator(".answer")).to_have_text("Marmots hibernate.")


def test_dropped_stream_reconnects_from_the_last_event(browser: Browser, service: str) -> None:
    proxy = DroppingProxy(int(service.rsplit(":", 1)[1]))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        resumed: list[str | None] = []
        page.on(
            "request",
            lambda r: (
                resumed.append(r.headers.get("last-event-id")) if "/events" in r.url else None
            ),
        )
        page.goto(proxy.url + "/")
        ask(page, SLOW)
        turn = last_turn(page)
        assert proxy.cuts == 1
        assert len(resumed) == 2 and resumed[0] is None and int(resumed[1] or 0) > 0
        expect(turn.locator(".reasoning-text")).to_have_text(SLOW_REASONING)
        expect(turn.locator(".answer")).to_have_text("Marmots hibernate.")
    finally:
        context.close()
        proxy.close()


def test_stop_cancels_the_run(page: Page, service: str) -> None:
    ask(page, STOPPABLE)
    expect(page.locator(".turn .reasoning-text").first).to_contain_text("marmot-thought-01")
    page.get_by_role("button", name="Stop").click()
    turn = last_turn(page, "interrupted")
    expect(turn.locator(".note")).to_contain_text("Stopped")
    expect(page.locator("#stop")).to_be_hidden()
    expect(page.locator("#send")).to_be_enabled()
    runs = httpx.get(f"{service}/threads/{current_thread(page)}/runs").json()
    assert [r["status"] for r in runs] == ["interrupted"]


def test_run_options_lower_a_budget_and_the_early_answer_says_why(page: Page) -> None:
    page.get_by_text("Run options").click()
    page.get_by_label("Max steps").fill("1")
    ask(page, TWO_HOP)
    turn = last_turn(page)
    expect(turn.locator(".tool-search")).to_have_count(1)
    expect(turn.locator(".note")).to_have_text(
        "Answered early: the step budget was used up. The answer uses what was found so far."
    )
    expect(turn.locator(".answer .chip")).to_have_count(1)


def test_hostile_text_renders_as_text(page: Page) -> None:
    ask(page, XSS_Q)
    turn = last_turn(page)
    number = turn.locator(".answer .chip").first.inner_text()
    expect(turn.locator(".answer")).to_have_text(XSS_ANSWER.replace("[1]", number).strip())
    assert turn.locator(".answer b, .answer img, .answer script").count() == 0
    expect(turn.locator(".reasoning-text").first).to_contain_text("<script>window.__xss=4</script>")
    expect(turn.locator(".hit-title").first).to_contain_text("Hostile <i>title</i>")
    turn.locator(".answer .chip").first.click()
    expect(page.locator("#panel mark.cited")).to_have_text(XSS_PASSAGE)
    assert page.locator("#panel img, #panel script, #panel i").count() == 0
    assert page.evaluate("window.__xss") is None


def test_chinese_question_threads_search_phone_and_delete(
    page: Page, browser: Browser, service: str
) -> None:
    ask(page, ZH_Q)
    turn = last_turn(page)
    expect(turn.locator(".q")).to_have_text(ZH_Q)
    expect(turn.locator(".reasoning-text").first).to_have_text("我需要查一下首都。")
    expect(turn.locator(".answer")).to_contain_text("首都是西尔瓦尼亚城")
    turn.locator(".answer .chip").first.click()
    expect(page.locator("#panel mark.cited")).to_have_text(ZH_TEXT)
    expect(page.locator("#panel .meta")).to_contain_text("zh/弗里多尼亚.md")
    thread = current_thread(page)
    # Threads: newest first, searchable by the first question.
    titles = page.locator(".thread-title")
    expect(titles.first).to_have_text(ZH_Q)
    page.fill("#thread-filter", "弗里多")
    expect(titles).to_have_count(1)
    page.fill("#thread-filter", "no such thread title")
    expect(titles).to_have_count(0)
    page.fill("#thread-filter", "")

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    small = phone.new_page()
    small.goto(f"{service}/#/t/{thread}")
    expect(small.locator(".turn .answer")).to_contain_text("首都是西尔瓦尼亚城")
    assert small.evaluate("document.documentElement.scrollWidth") <= 390
    small.screenshot(path=str(SCREENSHOTS / "console-phone.png"))
    small.get_by_role("button", name="Show threads").click()
    expect(small.locator(".thread-title").first).to_be_visible()
    phone.close()

    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name=f"Delete thread: {ZH_Q}").click()
    expect(page.locator(f'.thread[data-thread="{thread}"]')).to_have_count(0)
    expect(page.locator(".turn")).to_have_count(0)
    assert httpx.get(f"{service}/threads/{thread}").status_code == 404


def test_corpus_panel_and_search_playground(page: Page) -> None:
    page.get_by_role("button", name="Corpus").click()
    panel = page.locator("#panel")
    expect(panel.locator(".meta")).to_contain_text("memory:console-passages.jsonl")
    page.fill("#play-q", "Sylvania river traders")
    page.press("#play-q", "Enter")
    bm25 = panel.locator('.compare-col[data-mode="bm25"]')
    expect(bm25.locator(".hit").first).to_contain_text("Sylvania City")
    expect(panel.locator('.compare-col[data-mode="dense"]')).to_contain_text("bm25 only")
    shot(page, "console-corpus")


@pytest.fixture(scope="module")
def indexed_service(
    model: ScriptedModelServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real FAISS index whose last indexing run skipped two files (served in bm25 mode:
    the hash embedder it was built with is test-only)."""
    tmp = tmp_path_factory.mktemp("console-index")
    docs = tmp / "docs"
    (docs / "scans").mkdir(parents=True)
    (docs / "sylvania.md").write_text("# Sylvania City\n\nFounded in 1712.\n", encoding="utf-8")
    (docs / "scans" / "page-1.tiff").write_bytes(b"II*\x00")
    (docs / "empty.txt").write_text("\n", encoding="utf-8")
    run_index_job([docs], tmp / "index", IndexConfig(), embedder=HashEmbedder())
    settings = service_settings(
        tmp, model.base_url, index_dir=tmp / "index", memory_passages=None,
        retriever_mode="bm25",
    )  # fmt: skip
    with ThreadServer(settings) as srv:
        yield srv.url


def test_corpus_panel_lists_the_files_the_last_run_skipped(
    browser: Browser, indexed_service: str
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(indexed_service + "/")
    page.get_by_role("button", name="Corpus").click()
    run = page.get_by_role("region", name="Last indexing run")
    expect(run).to_contain_text("1 document read, 1 added")
    expect(run).to_contain_text("published generation 1")
    expect(run.locator("h4")).to_have_text("Skipped (2)")
    items = run.locator(".skipped-item")
    expect(items).to_have_count(2)
    expect(items.locator(".skipped-source")).to_have_text(["empty.txt", "scans/page-1.tiff"])
    expect(items.nth(0).locator(".skipped-reason")).to_contain_text("no text to index")
    expect(items.nth(1).locator(".skipped-reason")).to_contain_text("unsupported file type .tiff")
    expect(run).not_to_contain_text("null")  # the absent "and N more" line leaves nothing
    shot(page, "console-corpus-skipped")
    context.close()


def test_page_weight_and_first_reasoning_latency(
    page: Page, browser: Browser, service: str
) -> None:
    """Cold-load bytes, and Enter -> first reasoning token on the page vs on a raw SSE
    reader of the same run (written to build/console-screenshots/measurements.json)."""
    cold = browser.new_context()
    fresh = cold.new_page()
    fresh.goto(service + "/")
    expect(fresh.locator("#question")).to_be_focused()
    weight = fresh.evaluate(
        "performance.getEntriesByType('navigation').concat(performance.getEntriesByType"
        "('resource')).reduce((n, e) => n + e.transferSize, 0)"
    )
    cold.close()
    assert 0 < weight < 150_000

    raw: dict[str, float] = {}

    def read_raw(run_id: str) -> None:
        with httpx.stream("GET", f"{service}/v1/runs/{run_id}/events", timeout=30) as r:
            for event, _data, _id in sse_events(r.iter_lines()):
                if event == "reasoning_delta":
                    raw["first"] = time.time() * 1000
                    return

    with page.expect_response("**/v1/runs") as created:
        ask(page, MEASURE)
    reader = threading.Thread(target=read_raw, args=(created.value.json()["run_id"],))
    reader.start()
    last_turn(page)
    reader.join(10)
    marks = page.evaluate(
        "Object.fromEntries(performance.getEntriesByType('mark').map(m => "
        "[m.name, performance.timeOrigin + m.startTime]))"
    )
    enter, on_page = marks["thinkrag:ask"], marks["thinkrag:first-reasoning"]
    figures = {
        "cold_load_bytes": weight,
        "enter_to_first_reasoning_page_ms": round(on_page - enter, 1),
        "enter_to_first_reasoning_raw_sse_ms": round(raw["first"] - enter, 1),
    }
    (SCREENSHOTS / "measurements.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(figures)
    assert on_page > enter and raw["first"] > enter


@pytest.fixture(scope="module")
def keyed_service(
    model: ScriptedModelServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("console-keys")
    passages = write_console_passages(tmp / "console-passages.jsonl")
    settings = service_settings(
        tmp, model.base_url, memory_passages=passages, api_keys="key-alpha,key-beta"
    )
    with ThreadServer(settings) as srv:
        yield srv.url


def test_api_keys_each_key_sees_only_its_threads(browser: Browser, keyed_service: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(keyed_service + "/")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    page.fill("#key-input", "wrong-key")
    page.press("#key-input", "Enter")
    expect(page.locator("#key-error")).to_contain_text("not valid")
    shot(page, "console-api-key")
    page.fill("#key-input", "key-alpha")
    page.press("#key-input", "Enter")
    expect(dialog).to_be_hidden()
    ask(page, ZH_Q)
    last_turn(page)
    expect(page.locator(".thread")).to_have_count(1)
    alpha_thread = current_thread(page)
    assert page.evaluate("sessionStorage.getItem('thinkrag.apiKey')") == "key-alpha"
    assert page.evaluate("localStorage.length") == 0

    page.get_by_role("button", name="API key").click()
    page.get_by_role("button", name="Forget key").click()
    expect(dialog).to_be_visible()  # the server still needs a key
    page.fill("#key-input", "key-beta")
    page.press("#key-input", "Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#thread-empty")).to_be_visible()
    expect(page.locator(".thread")).to_have_count(0)
    expect(page.locator(".turn")).to_have_count(0)
    expect(page.locator("#status")).to_contain_text("does not exist")
    headers = {"Authorization": "Bearer key-beta"}
    assert httpx.get(f"{keyed_service}/threads/{alpha_thread}", headers=headers).status_code == 404
    context.close()
