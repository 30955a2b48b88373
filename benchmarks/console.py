"""The research console's two figures, in one run: what a cold load transfers, and how long
from Enter to the first reasoning token on the page versus on a raw SSE reader of the
same run (the baseline: the page's own cost is the difference).

A real service under uvicorn (the contract corpus indexed by the real job with the
test-only hash embedder, bm25 mode), the scripted model speaking the OpenAI wire protocol,
and the OS Chromium driven by Playwright (`scripts/test.sh` installs both). The model holds
its first token `--hold` seconds so the raw reader, which learns the run id from the
page's `POST /v1/runs`, is connected before the token exists; a round where it was not is
reported, not hidden. Prints markdown tables.

    python benchmarks/console.py [--rounds 20] [--hold 0.5]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
QUESTION = "How fast does the first thought arrive?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(root: Path, model_url: str) -> tuple[str, Callable[[], None]]:
    import uvicorn

    from retrieval.indexing.job import index_documents
    from retrieval.indexing.job_types import IndexConfig
    from serving.http.app import create_app
    from serving.settings import load_settings
    from testing.contract import contract_documents
    from testing.embedder import HashEmbedder

    index = root / "index"
    index_documents(contract_documents(), index, IndexConfig(), embedder=HashEmbedder())
    port = free_port()
    settings = load_settings(
        index_dir=index, retriever_mode="bm25", db_path=root / "service.db", port=port,
        model_url=model_url, model_name="scripted", requests_per_minute=1_000_000,
    )  # fmt: skip
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{port}", stop


def sse_first_reasoning(url: str, run_id: str, out: dict[str, float]) -> None:
    """Wall-clock ms when this reader connected and when it read the first reasoning delta."""
    with httpx.stream("GET", f"{url}/v1/runs/{run_id}/events", timeout=60) as response:
        out["connected"] = time.time() * 1000
        event = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "reasoning_delta":
                out["first"] = time.time() * 1000
                return


@dataclass
class Round:
    page_ms: float
    raw_ms: float
    raw_connected_first: bool


def cold_load(browser: Any, url: str) -> dict[str, int]:
    """Bytes of a load with an empty cache: over the wire (headers included) and decoded."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + "/")
    page.wait_for_load_state("networkidle")
    entries = page.evaluate(
        "performance.getEntriesByType('navigation').concat(performance.getEntriesByType"
        "('resource')).map(e => [e.name, e.transferSize, e.decodedBodySize])"
    )
    context.close()
    return {
        "requests": len(entries),
        "transferred": sum(int(e[1]) for e in entries),
        "decoded": sum(int(e[2]) for e in entries),
    }


def one_round(page: Any, url: str) -> Round:
    page.goto(url + "/")
    page.locator("#question").wait_for()
    raw: dict[str, float] = {}
    page.fill("#question", QUESTION)
    with page.expect_response("**/v1/runs") as created:
        page.press("#question", "Enter")
    run_id = created.value.json()["run_id"]
    reader = threading.Thread(target=sse_first_reasoning, args=(url, run_id, raw))
    reader.start()
    page.locator(".turn[data-status=success]").last.wait_for()
    reader.join(30)
    # The page's marks are on its performance clock; shift them onto the wall clock.
    marks = page.evaluate(
        "(() => { const off = Date.now() - (performance.timeOrigin + performance.now());"
        " return Object.fromEntries(performance.getEntriesByType('mark').map(m =>"
        " [m.name, performance.timeOrigin + m.startTime + off])); })()"
    )
    enter, shown = marks["thinkrag:ask"], marks["thinkrag:first-reasoning"]
    return Round(shown - enter, raw["first"] - enter, raw["connected"] < raw["first"])


def run(rounds: int, hold: float) -> None:
    from playwright.sync_api import sync_playwright

    from testing.scripted import ScriptedModelServer, ScriptedTurn

    model = ScriptedModelServer(
        lambda _req: ScriptedTurn(
            reasoning="Measuring the stream.", content="Done.", first_byte_delay=hold
        )
    )
    model.start()
    root = Path(tempfile.mkdtemp(prefix="console-bench-"))
    url, stop = start_service(root, model.base_url)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            weight = cold_load(browser, url)
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.set_default_timeout(60_000)
            one_round(page, url)  # warm-up: imports, first run, connection pool
            results = [one_round(page, url) for _ in range(rounds)]
            context.close()
            browser.close()
    finally:
        stop()
        model.stop()
    print(f"Cold load: {weight['requests']} requests, {weight['transferred']} bytes "
          f"({weight['transferred'] / 1024:.1f} KB) transferred, headers included; "
          f"{weight['decoded'] / 1024:.1f} KB decoded.")  # fmt: skip
    print()
    late = sum(not r.raw_connected_first for r in results)
    page_ms = sorted(r.page_ms for r in results)
    raw_ms = sorted(r.raw_ms for r in results)
    gaps = sorted(r.page_ms - r.raw_ms for r in results)
    base = statistics.median(raw_ms)
    print(f"Enter -> first reasoning token ({rounds} runs, model holds its first token "
          f"{hold * 1000:.0f} ms; raw reader connected late in {late}):")  # fmt: skip
    print()
    print("| observer | p50 ms | p90 ms | p50 vs raw SSE |")
    print("|---|---:|---:|---:|")
    for name, values in (("raw SSE reader (httpx)", raw_ms), ("console page (DOM)", page_ms)):
        p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
        p50 = statistics.median(values)
        print(f"| {name} | {p50:.1f} | {p90:.1f} | {p50 / base:.3f}x |")
    print(f"| page minus raw, per run | {statistics.median(gaps):.1f} | "
          f"{gaps[min(len(gaps) - 1, int(len(gaps) * 0.9))]:.1f} | - |")  # fmt: skip
    print()
    print(json.dumps({"rounds": [r.__dict__ for r in results], "cold_load": weight}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--hold", type=float, default=0.5, help="first-token delay, seconds")
    args = parser.parse_args()
    run(args.rounds, args.hold)


if __name__ == "__main__":
    main()
