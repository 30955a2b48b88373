"""`check_server` against scripted servers: one configured well, one missing parsers."""

from __future__ import annotations

import json

import pytest

from serving.models.check import PROBE_JSON_SCHEMA, check_server, schema_errors
from testing.scripted import ScriptedTurn, ScriptRequest

pytestmark = pytest.mark.timeout(60)


def _well_configured(req: ScriptRequest) -> ScriptedTurn:
    body = req.body
    if body.get("tools"):
        return ScriptedTurn(reasoning="search it", tool_calls=(("search", '{"query": "Eiffel"}'),))
    if body.get("response_format"):
        return ScriptedTurn(reasoning="Paris", content='{"city": "Paris", "confident": true}')
    return ScriptedTurn(reasoning="2 + 3 = 5", content="5")


def _no_parsers(req: ScriptRequest) -> ScriptedTurn:
    """vLLM started without --reasoning-parser and without --tool-call-parser."""
    body = req.body
    if body.get("tools"):
        return ScriptedTurn(
            status=400,
            error_message='tool_choice="required" requires --tool-call-parser to be set',
        )
    if body.get("response_format"):
        return ScriptedTurn(reasoning="hmm", content='{"city": "Paris"}', think_in_content=True)
    return ScriptedTurn(reasoning="2 + 3 = 5", content="5", think_in_content=True)


async def test_well_configured_server_passes(scripted_model) -> None:
    server = scripted_model(_well_configured, model="qwen3")
    report = await check_server(server.base_url)
    statuses = {r.name: r.status for r in report.rows}
    assert statuses == {
        "models": "ok",
        "reasoning": "ok",
        "tool calls": "ok",
        "structured output": "ok",
        "streaming": "ok",
    }
    assert report.ok and report.model == "qwen3"
    tool_body = next(r.body for r in server.requests if r.body.get("tools"))
    assert tool_body["tool_choice"] == "required"


async def test_server_without_parsers_gets_fixes(scripted_model) -> None:
    server = scripted_model(_no_parsers)
    report = await check_server(server.base_url)
    reasoning = report.row("reasoning")
    assert reasoning.status == "warn" and "--reasoning-parser" in reasoning.fix
    tools = report.row("tool calls")
    assert tools.status == "fail" and "--enable-auto-tool-choice" in tools.fix
    structured = report.row("structured output")
    assert structured.status == "fail" and "confident" in structured.detail
    assert not report.ok


async def test_unknown_model_and_unreachable_server(scripted_model) -> None:
    server = scripted_model(_well_configured, model="qwen3")
    report = await check_server(server.base_url, model="gpt-oss-20b")
    assert [r.status for r in report.rows] == ["fail"]
    assert "--served-model-name" in report.rows[0].fix
    server.stop()
    down = await check_server(server.base_url)
    assert down.rows[0].name == "models" and down.rows[0].status == "fail"


def test_schema_errors() -> None:
    assert schema_errors({"city": "Paris", "confident": False}, PROBE_JSON_SCHEMA) == []
    errs = schema_errors(json.loads('{"city": 3, "extra": 1}'), PROBE_JSON_SCHEMA)
    assert any("confident" in e for e in errs) and any("extra" in e for e in errs)
    assert any("expected string" in e for e in errs)


async def test_long_reasoning_probe_retries_with_thinking_off(scripted_model) -> None:
    def script(req: ScriptRequest) -> ScriptedTurn:
        thinking_off = (req.body.get("chat_template_kwargs") or {}).get("enable_thinking") is False
        if req.body.get("tools") and not thinking_off:
            return ScriptedTurn(reasoning="on and on", finish_reason="length")
        return _well_configured(req)

    server = scripted_model(script)
    report = await check_server(server.base_url)
    tools = report.row("tool calls")
    assert tools.status == "ok" and "enable_thinking=false" in tools.detail
    assert report.row("structured output").detail.startswith("valid JSON")
