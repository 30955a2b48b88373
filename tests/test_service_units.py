"""Unit tests of the service's own parts: settings, store, SSE ids, limits, stream modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.events import GraphChunk, RunStarted, ToolCallEvent
from serving.http.errors import BadRequestError, RateLimitedError, ValidationFailedError
from serving.http.graph_stream import GraphStreamRenderer, normalize_modes
from serving.http.limits import RateLimiter
from serving.http.sqlite_store import SqliteStore as Store
from serving.http.sse import frame, parse_event_id
from serving.settings import Settings, SettingsError, load_settings


def test_settings_precedence_env_over_toml_and_flags_over_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "s.toml"
    config.write_text('port = 9001\nprofile = "local"\nmax_active_runs = 3\n')
    monkeypatch.setenv("THINKRAG_PORT", "9002")
    monkeypatch.setenv("THINKRAG_API_KEYS", "a, b")
    settings = load_settings(config, profile="other")
    assert settings.port == 9002  # env beats the file
    assert settings.profile == "other"  # explicit flag beats both
    assert settings.max_active_runs == 3  # file beats defaults
    assert [k.get_secret_value() for k in settings.api_keys] == ["a", "b"]
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_loopback_detection() -> None:
    assert Settings(host="127.0.0.1").is_loopback
    assert Settings(host="localhost").is_loopback
    assert Settings(host="::1").is_loopback
    assert not Settings(host="0.0.0.0").is_loopback


def test_store_numbers_events_and_survives_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.create_thread("t", {"k": "v"}, owner="o")
    store.create_run(
        run_id="r", thread_id="t", assistant_id="research", question="q", options={},
        metadata={}, owner="o", base_state={}, stream_modes=["custom"],
    )  # fmt: skip
    for seq in range(1, 6):
        store.append_event("r", seq, "agent", f'{{"n": {seq}}}')
    store.set_run_status("r", "running", attempt=1)
    store.close()
    again = Store(tmp_path / "s.db")
    assert again.last_seq("r") == 5
    assert [e.seq for e in again.events_after("r", 2, limit=2)] == [3, 4]
    assert [r.run_id for r in again.unfinished_runs()] == ["r"]
    assert again.get_run("r").stream_modes == ["custom"]  # type: ignore[union-attr]
    again.delete_thread("t")
    assert again.get_run("r") is None and again.events_after("r", 0, limit=10) == []


def test_sse_frames_and_event_ids() -> None:
    assert frame("a\nb", event="x", id="3.1") == b"event: x\nid: 3.1\ndata: a\ndata: b\n\n"
    assert parse_event_id(None) == (0, -1)
    assert parse_event_id("7.2") == (7, 2)
    assert parse_event_id("7") == (7, 1_000_000)  # a bare seq: everything of event 7 was seen
    with pytest.raises(BadRequestError):
        parse_event_id("x.y")


def test_rate_limiter_refills() -> None:
    limiter = RateLimiter(per_minute=60)
    for _ in range(int(limiter.capacity)):
        limiter.check("k")
    with pytest.raises(RateLimitedError) as info:
        limiter.check("k")
    assert 0 < info.value.retry_after <= 1.5
    limiter.check("other")  # keys are independent


def test_stream_modes_are_validated_and_rendered_deterministically() -> None:
    with pytest.raises(ValidationFailedError):
        normalize_modes(["values", "events"])
    from serving.http.run_store import StoredEvent

    message = {"type": "ai", "id": "m1", "content": "hi"}
    events = [
        RunStarted(run_id="r", thread_id="t", question="q"),
        GraphChunk(run_id="r", mode="values", data={"messages": []}),
        GraphChunk(run_id="r", mode="updates", data={"start": {"step": 0}}),
        GraphChunk(run_id="r", mode="messages", data=[message, {"langgraph_node": "act"}]),
        ToolCallEvent(run_id="r", step=1, call_id="c1", name="search", arguments='{"query": "x"}'),
    ]
    rows = [
        StoredEvent("r", i + 1, 0.0, "graph" if isinstance(e, GraphChunk) else "agent",
                    e.model_dump_json())
        for i, e in enumerate(events)
    ]  # fmt: skip

    def render(modes: list[str]) -> list[tuple[str, object]]:
        r = GraphStreamRenderer(modes=modes)
        return [f for row in rows for f in r.render(row)]

    frames = render(["values", "updates", "messages-tuple", "messages"])
    assert frames == render(["values", "updates", "messages-tuple", "messages"])  # replayable
    assert [name for name, _ in frames] == [
        "values", "updates", "messages", "messages/metadata", "messages/complete",
    ]  # fmt: skip
    assert frames[3][1] == {"m1": {"metadata": {"langgraph_node": "act"}}}
    assert [name for name, _ in render(["custom"])] == ["custom", "custom"]


def test_serve_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from serving.cli import app
    from tests.test_service_support import free_port, write_passages

    runner = CliRunner()
    missing = runner.invoke(app, ["serve", "--index", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "thinkrag index" in missing.output
    public = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--index", str(tmp_path)])
    assert public.exit_code == 2 and "THINKRAG_API_KEYS" in public.output
    config = tmp_path / "c.toml"
    config.write_text(f'memory_passages = "{write_passages(tmp_path / "p.jsonl")}"\n')
    dead = f"http://127.0.0.1:{free_port()}/v1"
    down = runner.invoke(app, ["serve", "--config", str(config), "--model", dead])
    assert down.exit_code == 2 and "cannot reach the model server" in down.output
