"""Probe a running OpenAI-protocol server and say which thinkrag features its flags allow.

Most "the agent does nothing" reports come down to a missing vLLM flag: no reasoning
parser (reasoning leaks into the content), no tool-call parser (tool_choice is a 400), no
structured-output backend. `check_server` asks the server small questions and returns one
row per feature with a status and, when something is off, the flag that fixes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx

from agent.errors import ModelError, ModelRequestError
from agent.llm.client import OpenAIClient, RetryPolicy, Timeouts
from agent.llm.types import ChatRequest, ChatResult, Message

CheckStatus = Literal["ok", "warn", "fail"]

PROBE_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "maxLength": 60}},
    "required": ["query"],
    "additionalProperties": False,
}
PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the user's documents.",
        "parameters": PROBE_TOOL_SCHEMA,
        "strict": True,
    },
}
PROBE_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "confident": {"type": "boolean"},
    },
    "required": ["city", "confident"],
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class CheckRow:
    name: str
    status: CheckStatus
    detail: str
    fix: str = ""


@dataclass(slots=True)
class CheckReport:
    base_url: str
    model: str = ""
    rows: list[CheckRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No row failed (warnings allowed)."""
        return all(r.status != "fail" for r in self.rows)

    def row(self, name: str) -> CheckRow:
        return next(r for r in self.rows if r.name == name)


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """The few JSON-schema rules our probes use (type, required, properties, enum, maxLength,
    additionalProperties=false); enough to tell a constrained output from a lucky one."""
    kinds: dict[str, Any] = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "null": type(None),
    }
    expected = schema.get("type")
    if isinstance(expected, str):
        ok = isinstance(value, kinds[expected])
        if expected in ("integer", "number") and isinstance(value, bool):
            ok = False
        if not ok:
            return [f"{path}: expected {expected}, got {type(value).__name__}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        errors.append(f"{path}: longer than {schema['maxLength']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errors += [f"{path}: missing {k!r}" for k in schema.get("required", []) if k not in value]
        if schema.get("additionalProperties") is False:
            errors += [f"{path}: unexpected {k!r}" for k in value if k not in props]
        for key, sub in props.items():
            if key in value:
                errors += schema_errors(value[key], sub, f"{path}.{key}")
    return errors


async def check_server(
    base_url: str,
    *,
    model: str | None = None,
    api_key: str | None = None,
    timeouts: Timeouts | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> CheckReport:
    """Probe `base_url` (ending in /v1): models, reasoning field, tool calls, structured output."""
    report = CheckReport(base_url=base_url)
    timeouts = timeouts or Timeouts(connect=5.0, first_byte=60.0, between_chunks=30.0, total=120.0)
    client = OpenAIClient(
        base_url,
        model,
        api_key=api_key,
        timeouts=timeouts,
        retry=RetryPolicy(attempts=2, base=0.2, cap=1.0),
        transport=transport,
    )
    try:
        served = await _check_models(client, model, report)
        if served is None:
            return report
        report.model = served
        await _check_reasoning(client, served, report, api_key, transport)
        await _check_tools(client, report)
        await _check_structured(client, report)
        await _check_streaming(client, report)
    finally:
        await client.aclose()
    return report


async def _check_models(client: OpenAIClient, model: str | None, report: CheckReport) -> str | None:
    try:
        models = await client.list_models()
    except ModelError as exc:
        report.rows.append(
            CheckRow(
                "models",
                "fail",
                f"GET /v1/models failed: {exc}",
                "start the server, and pass the URL ending in /v1",
            )
        )
        return None
    if not models:
        report.rows.append(
            CheckRow("models", "fail", "the server lists no models", "start vLLM with --model")
        )
        return None
    if model is not None and model not in models:
        report.rows.append(
            CheckRow(
                "models",
                "fail",
                f"{model!r} is not served (serving: {', '.join(models)})",
                f"pass one of {models}, or start vLLM with --served-model-name {model}",
            )
        )
        return None
    report.rows.append(CheckRow("models", "ok", f"serving: {', '.join(models)}"))
    return model or models[0]


async def _check_reasoning(
    client: OpenAIClient,
    model: str,
    report: CheckReport,
    api_key: str | None,
    transport: httpx.AsyncBaseTransport | None,
) -> None:
    """Raw request: the client normalises the reasoning shapes, so look at the wire here."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "What is 2 + 3? Answer with one number."}],
        "max_tokens": 256,
        "temperature": 0,
    }
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(transport=transport, headers=headers, timeout=60.0) as http:
            resp = await http.post(f"{client.base_url}/chat/completions", json=body)
        resp.raise_for_status()
        choice = resp.json()["choices"][0]
        message = choice["message"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        report.rows.append(
            CheckRow(
                "reasoning",
                "fail",
                f"a plain chat request failed: {exc!r}",
                "check the server log; the chat template may be missing",
            )
        )
        return
    content = message.get("content") or ""
    if message.get("reasoning"):
        row = CheckRow("reasoning", "ok", "reasoning arrives in message.reasoning")
    elif message.get("reasoning_content"):
        row = CheckRow(
            "reasoning",
            "warn",
            "reasoning arrives in the legacy reasoning_content",
            "thinkrag reads it; upgrade vLLM for the current `reasoning` field",
        )
    elif "<think>" in content or "</think>" in content:
        row = CheckRow(
            "reasoning",
            "warn",
            "reasoning is inside <think> tags in the content",
            "start vLLM with --reasoning-parser (qwen3, deepseek_r1, ...); thinkrag "
            "splits the tags meanwhile",
        )
    else:
        row = CheckRow(
            "reasoning",
            "warn",
            "no reasoning seen (not a reasoning model, or thinking is off)",
            "for a reasoning model start vLLM with --reasoning-parser <name>",
        )
    if not content.strip() and choice.get("finish_reason") == "length":
        row = CheckRow(
            row.name,
            "warn",
            row.detail + "; the answer was cut by max_tokens",
            row.fix or "raise max_tokens or set a thinking budget",
        )
    report.rows.append(row)


async def _probe_chat(client: OpenAIClient, request: ChatRequest) -> tuple[ChatResult, str]:
    """Chat; when reasoning eats all of max_tokens, ask again with thinking off (Qwen3-style
    `enable_thinking`), and say so in the detail."""
    result = await client.chat(request)
    if result.finish_reason != "length" or result.content.strip() or result.tool_calls:
        return result, ""
    retry = replace(request, chat_template_kwargs={"enable_thinking": False})
    note = (
        f" (reasoning used all {request.max_tokens} tokens; this answer is with "
        "enable_thinking=false)"
    )
    return await client.chat(retry), note


async def _check_tools(client: OpenAIClient, report: CheckReport) -> None:
    request = ChatRequest(
        messages=[Message("user", "Find documents about the Eiffel Tower.")],
        max_tokens=256,
        temperature=0.0,
        tools=[PROBE_TOOL],
        tool_choice="required",
    )
    try:
        result, note = await _probe_chat(client, request)
    except ModelRequestError as exc:
        report.rows.append(
            CheckRow(
                "tool calls",
                "fail",
                f"tool_choice='required' was refused: {exc.body}",
                "start vLLM with --enable-auto-tool-choice --tool-call-parser <parser> "
                "(hermes for Qwen3, openai for gpt-oss); the agent can use the json "
                "protocol meanwhile",
            )
        )
        return
    except ModelError as exc:
        report.rows.append(CheckRow("tool calls", "fail", f"request failed: {exc}"))
        return
    if not result.tool_calls:
        report.rows.append(
            CheckRow(
                "tool calls",
                "fail",
                f"tool_choice='required' returned no tool call "
                f"(finish_reason={result.finish_reason}){note}",
                "check --tool-call-parser matches the model family",
            )
        )
        return
    call = result.tool_calls[0]
    try:
        args = json.loads(call.arguments)
    except json.JSONDecodeError:
        report.rows.append(
            CheckRow(
                "tool calls",
                "fail",
                f"arguments are not JSON: {call.arguments[:80]!r}",
                "start vLLM with --tool-strict-level parameter or mark tools strict",
            )
        )
        return
    errors = schema_errors(args, PROBE_TOOL_SCHEMA)
    if call.name != "search" or errors:
        report.rows.append(
            CheckRow(
                "tool calls",
                "fail",
                f"call {call.name}({call.arguments}) breaks the "
                f"schema: {'; '.join(errors) or 'wrong tool name'}",
                "start vLLM with --tool-strict-level parameter",
            )
        )
        return
    report.rows.append(
        CheckRow("tool calls", "ok", f"search({call.arguments}) matches the schema{note}")
    )


async def _check_structured(client: OpenAIClient, report: CheckReport) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": PROBE_JSON_SCHEMA, "strict": True},
    }
    request = ChatRequest(
        messages=[Message("user", "Which city is the Eiffel Tower in? Reply as JSON.")],
        max_tokens=512,
        temperature=0.0,
        response_format=response_format,
    )
    fix = 'start vLLM with --structured-outputs-config \'{"backend": "xgrammar"}\''
    try:
        result, note = await _probe_chat(client, request)
    except ModelRequestError as exc:
        report.rows.append(CheckRow("structured output", "fail", f"refused: {exc.body}", fix))
        return
    except ModelError as exc:
        report.rows.append(CheckRow("structured output", "fail", f"request failed: {exc}"))
        return
    try:
        value = json.loads(result.content)
    except json.JSONDecodeError:
        report.rows.append(
            CheckRow(
                "structured output",
                "fail",
                f"content is not JSON: {result.content[:80]!r}{note}",
                fix,
            )
        )
        return
    errors = schema_errors(value, PROBE_JSON_SCHEMA)
    if errors:
        report.rows.append(CheckRow("structured output", "fail", "; ".join(errors), fix))
        return
    report.rows.append(
        CheckRow("structured output", "ok", f"valid JSON: {result.content[:120]}{note}")
    )


async def _check_streaming(client: OpenAIClient, report: CheckReport) -> None:
    request = ChatRequest(messages=[Message("user", "Say hello.")], max_tokens=64)
    final: ChatResult | None = None
    pieces = 0
    try:
        async for item in client.stream_chat(request):
            if isinstance(item, ChatResult):
                final = item
            else:
                pieces += 1
    except ModelError as exc:
        report.rows.append(CheckRow("streaming", "fail", f"streaming failed: {exc}"))
        return
    if final is None or final.usage.completion_tokens == 0:
        report.rows.append(
            CheckRow(
                "streaming",
                "warn",
                f"{pieces} deltas but no usage in the stream",
                "token budgets need usage: use a server honouring stream_options",
            )
        )
        return
    report.rows.append(
        CheckRow(
            "streaming", "ok", f"{pieces} deltas, usage {final.usage.completion_tokens} tokens"
        )
    )
