"""The answer streams to clients as the model writes it, citation-checked on the way.

Live text must be exactly what `check_answer` keeps (unknown `[n]` dropped even when a
mark is split across stream chunks), and the `AnswerDelta`s of a run must concatenate to
`RunFinished.answer` whether the answer was streamed live or sent after the fact.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from itertools import pairwise

from agent.citations import CitationFilter, check_answer
from agent.config import AgentConfig, RunOptions
from agent.events import AnswerDelta, Event, RunFinished
from agent.runner import ResearchAgent
from testing.scripted import ScriptedModelServer, ScriptedTurn
from tests.agent_support import call, finished, make_agent

Factory = Callable[..., ScriptedModelServer]
QUESTION = "What is the capital of Freedonia?"
# Passages 1 and 2 are retrieved by the search below; 42 never is.
ANSWER = (
    "Its capital is Sylvania City [1][42], which exports cheese [2]. "
    "Freedonia lies in the northern hills [1, 42]."
)
CHECKED = (
    "Its capital is Sylvania City [1], which exports cheese [2]. "
    "Freedonia lies in the northern hills [1]."
)
CHUNK = 5  # on the wire: "ity [" + "1][42" + "], wh" ... "ese [" + "2]. F"
SEARCH = ScriptedTurn(reasoning="Search first.", tool_calls=(call("search", query=QUESTION),))


def wire_chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def reference_check(text: str, known: set[int]) -> str:
    """check_answer's text as it was computed before streaming: whole-text regexes."""

    def rewrite(m: re.Match[str]) -> str:
        numbers = [int(p.strip()) for p in re.split(r"[,;]", m.group(1))]
        return "".join(f"[{n}]" for n in numbers if n in known)

    cleaned = re.sub(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]", rewrite, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip()


def filtered(pieces: list[str], known: set[int]) -> list[str]:
    f = CitationFilter(known)
    return [*(f.feed(p) for p in pieces), f.finish()]


async def run_live(
    agent: ResearchAgent, server: ScriptedModelServer, options: RunOptions | None = None
) -> tuple[list[Event], bool | None]:
    """Run to the end; also report whether the model's last request was still streaming
    when the first AnswerDelta reached us (None: no AnswerDelta at all)."""
    events: list[Event] = []
    still_streaming: bool | None = None
    async for event in agent.run(QUESTION, thread_id="t", run_id="r", options=options):
        if isinstance(event, AnswerDelta) and still_streaming is None:
            still_streaming = not server.requests[-1].completed
        events.append(event)
    return events, still_streaming


def answer_deltas(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, AnswerDelta)]


# -- the filter ------------------------------------------------------------------------------


def test_filter_matches_check_answer_for_every_split() -> None:
    known = {1, 2, 3}
    texts = [
        ANSWER,
        "  Lead blanks, a split mark [ 2 ,\n42 ] and [1;3] , then [x] [ [1] ]  ",
        "Unclosed at the end [1",
        "Unknown only [42] .",
        "[9]",
        "tabs\t\tand  spaces [42] !",
    ]
    for text in texts:
        want = check_answer(text, known).text
        assert want == reference_check(text, known)
        assert "".join(filtered(list(text), known)) == want  # one character at a time
        for cut in range(len(text) + 1):
            assert "".join(filtered([text[:cut], text[cut:]], known)) == want, (text, cut)


def test_filter_matches_the_whole_text_check_on_random_text() -> None:
    rng = random.Random(7)
    alphabet = [*"ab1 2 [ ] , ; . ! \t \n", "[1]", "[42]", "[2, 42]", " .", "42"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        pieces: list[str] = []
        pos = 0
        while pos < len(text):
            size = rng.randint(1, 6)
            pieces.append(text[pos : pos + size])
            pos += size
        want = reference_check(text, {1, 2})
        assert check_answer(text, {1, 2}).text == want, text
        assert "".join(filtered(pieces, {1, 2})) == want, pieces


def test_filter_holds_back_only_an_open_mark_and_trailing_blanks() -> None:
    f = CitationFilter({1})
    assert f.feed("City [") == "City"  # the blank may precede punctuation
    assert f.feed("4") == ""  # "[4" may still become a mark
    assert f.feed("2]") == ""  # [42] dropped; " " still held
    assert f.feed(". Next [") == ". Next"
    assert f.feed("1] [x") == " [1] [x"  # "[x" can never be a mark
    assert f.finish() == ""


# -- runs ------------------------------------------------------------------------------------


async def test_answer_step_without_tools_streams_live(scripted_model: Factory) -> None:
    pieces = wire_chunks(ANSWER, CHUNK)
    assert any(a.endswith("[") and b[0].isdigit() for a, b in pairwise(pieces))
    server = scripted_model(
        [SEARCH, ScriptedTurn(reasoning="I have what I need.", content=ANSWER)],
        chunk_chars=CHUNK,
        latency=0.05,
    )
    # One tool call allowed: the second step is offered no tools, so it can only answer.
    agent = make_agent(server.base_url, AgentConfig(top_k=2, max_tool_calls=1))
    events, still_streaming = await run_live(agent, server)
    await agent.aclose()
    done = finished(events)
    assert done.answer == CHECKED and done.removed_citations == [42]
    deltas = answer_deltas(events)
    assert "".join(deltas) == done.answer
    assert still_streaming is True  # the answer began before the model finished it
    assert len(deltas) > 10 and not any("42" in d for d in deltas)
    assert [s.number for s in done.sources] == [1, 2]
    assert "tools" not in server.requests[1].body


async def test_finalize_call_streams_live(scripted_model: Factory) -> None:
    server = scripted_model(
        [SEARCH, ScriptedTurn(reasoning="Out of steps; answer now.", content=ANSWER)],
        chunk_chars=CHUNK,
        latency=0.05,
    )
    agent = make_agent(server.base_url, AgentConfig(top_k=2, max_steps=1))
    events, still_streaming = await run_live(agent, server)
    await agent.aclose()
    done = finished(events)
    assert done.finalized_reason == "max_steps"
    assert done.answer == CHECKED and done.removed_citations == [42]
    assert "".join(answer_deltas(events)) == done.answer
    assert still_streaming is True


async def test_step_offered_tools_stays_buffered(scripted_model: Factory) -> None:
    # Tools are offered: content could still be followed by a tool call, so the answer is
    # only sent once the call has ended, in 64-character pieces.
    server = scripted_model(
        [SEARCH, ScriptedTurn(reasoning="Enough.", content=ANSWER)], chunk_chars=CHUNK
    )
    agent = make_agent(server.base_url)
    events, _ = await run_live(agent, server)
    await agent.aclose()
    done = finished(events)
    assert done.answer == CHECKED and done.removed_citations == [42]
    deltas = answer_deltas(events)
    assert "".join(deltas) == done.answer
    assert [len(d) for d in deltas] == [64, len(CHECKED) - 64]
    assert server.requests[1].body.get("tools")


async def test_content_that_may_turn_into_reasoning_stays_buffered(
    scripted_model: Factory,
) -> None:
    # No reasoning field and no opening <think>: until "</think>" arrives the content may
    # be reasoning, so nothing goes out live and the scratch text never reaches clients.
    turn = ScriptedTurn(
        reasoning="scratch notes", content="Sylvania City [1].", omit_think_open=True
    )
    server = scripted_model([SEARCH, turn], chunk_chars=CHUNK, latency=0.02)
    agent = make_agent(server.base_url, AgentConfig(top_k=2, max_tool_calls=1))
    events, still_streaming = await run_live(agent, server)
    await agent.aclose()
    done = finished(events)
    assert done.answer == "Sylvania City [1]."
    assert "".join(answer_deltas(events)) == done.answer
    assert still_streaming is False


async def test_deadline_mid_answer_keeps_what_was_streamed(scripted_model: Factory) -> None:
    content = "Sylvania City is the capital of Freedonia. " * 20
    server = scripted_model(
        [ScriptedTurn(reasoning="Answer directly.", content=content)], chunk_chars=8, latency=0.05
    )
    agent = make_agent(server.base_url, AgentConfig(top_k=2, max_tool_calls=0))
    events, still_streaming = await run_live(
        agent, server, options=RunOptions(deadline_seconds=1.5)
    )
    await agent.aclose()
    done = finished(events)
    assert isinstance(events[-1], RunFinished) and done.finalized_reason == "deadline"
    deltas = answer_deltas(events)
    assert still_streaming is True and "".join(deltas) == done.answer
    # Sent text cannot be recalled: the answer is the cut-off text, then the fallback.
    streamed, fallback = done.answer.split("\n\n", 1)
    assert streamed and content.startswith(streamed) and len(streamed) < len(content.strip())
    assert fallback.startswith("I could not finish the research (the time limit")
