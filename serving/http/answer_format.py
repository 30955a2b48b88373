"""A JSON answer format (`response_format` / Responses `text.format`): the cited answer,
restated as JSON by one more model call, and checked.

Why a separate call: the research steps must stay free to call tools, so their output
cannot be constrained to the client's schema. Once the run has answered, one call
without tools turns the cited answer and its sources into JSON, sent with
`response_format` so a server with structured outputs (vLLM) decodes only valid JSON.
A server that refuses the field (no structured outputs) is asked again without it, the
schema then only in the prompt. The result is parsed and validated with `jsonschema`
whatever the server did: a mismatch is a 502 that says so, never an answer that breaks
the client's parser.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import jsonschema
from pydantic import JsonValue

from agent.errors import ModelError, ModelRequestError, run_error_kind
from agent.events import Source
from agent.llm.types import ChatRequest, ChatResult, Message, ReasoningModel, Usage
from serving.http.errors import BadRequestError, RunFailedError, ServiceError

log = logging.getLogger(__name__)
JsonObject = dict[str, JsonValue]
SHAPE_MAX_TOKENS = 1024

SHAPE_PROMPT = (
    "You restate a researched answer as JSON. Use only facts from the answer and its "
    "sources; where the answer does not say, use null or an empty value. Reply with the "
    "JSON only, no prose and no code fences."
)


class AnswerFormatError(ServiceError):
    """The model's JSON answer did not parse or did not match the client's schema."""

    status, type = 502, "answer_format_mismatch"


@dataclass(frozen=True, slots=True)
class AnswerFormat:
    kind: Literal["json_object", "json_schema"]
    name: str = "answer"
    schema: JsonObject | None = None
    strict: bool = False

    @classmethod
    def parse(
        cls, kind: str, *, name: str | None, schema: object, strict: bool | None, param: str
    ) -> AnswerFormat | None:
        """The format a client asked for (None for plain text); 400 naming `param` when
        the schema itself is not a valid JSON Schema."""
        if kind == "text":
            return None
        if kind == "json_object":
            return cls("json_object")
        if kind != "json_schema":
            raise BadRequestError(
                f"`{param}.type` {kind!r} is not a format; send 'text', 'json_object' or "
                "'json_schema'",
                param=f"{param}.type",
            )
        if not isinstance(schema, dict):
            raise BadRequestError(
                f"`{param}.schema` is missing: a json_schema format needs the JSON Schema "
                "the answer must match",
                param=f"{param}.schema",
            )
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "(root)"
            raise BadRequestError(
                f"`{param}.schema` is not a valid JSON Schema ({exc.message} at {where}); "
                "fix the schema and resend",
                param=f"{param}.schema",
            ) from None
        return cls("json_schema", name or "answer", schema, bool(strict))

    @classmethod
    def from_chat(cls, value: object) -> AnswerFormat | None:
        """Chat completions' `response_format`."""
        if value in (None, {}):
            return None
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            raise BadRequestError(
                "`response_format` must be an object with a `type`: 'text', 'json_object' "
                "or 'json_schema'",
                param="response_format",
            )
        spec = value.get("json_schema")
        spec = spec if isinstance(spec, dict) else {}
        return cls.parse(
            value["type"], name=spec.get("name"), schema=spec.get("schema"),
            strict=spec.get("strict"), param="response_format.json_schema"
            if value["type"] == "json_schema" else "response_format",
        )  # fmt: skip

    def wire(self) -> JsonObject:
        """The `response_format` sent to the model server."""
        if self.schema is None:
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.schema, "strict": self.strict},
        }

    def check(self, text: str) -> str:
        """`text` if it is JSON matching the format; otherwise an `AnswerFormatError`."""
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AnswerFormatError(
                f"the model's answer is not JSON ({exc.msg} at character {exc.pos}); the model "
                "server may not support structured outputs: retry, or ask for plain text"
            ) from None
        if self.schema is None:
            if not isinstance(value, dict):
                raise AnswerFormatError(
                    "the model's answer is JSON but not an object; retry, or send a json_schema"
                )
            return text
        error = jsonschema.exceptions.best_match(
            jsonschema.validators.validator_for(self.schema)(self.schema).iter_errors(value)
        )
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise AnswerFormatError(
                f"the model's answer does not match the schema: {error.message} at {where}; "
                "retry, or simplify the schema"
            )
        return text


def shape_prompt(
    fmt: AnswerFormat, question: str, answer: str, sources: Sequence[Source]
) -> list[Message]:
    cited = "\n".join(f"[{s.number}] {s.title or s.doc_id} ({s.source}): {s.text}" for s in sources)
    wanted = (
        f"JSON matching this schema:\n{json.dumps(fmt.schema)}"
        if fmt.schema is not None
        else "one JSON object"
    )
    user = (
        f"Question: {question}\n\nResearched answer:\n{answer}\n\n"
        f"Sources:\n{cited or '(none)'}\n\nReply with {wanted}"
    )
    return [Message(role="system", content=SHAPE_PROMPT), Message(role="user", content=user)]


@dataclass(frozen=True, slots=True)
class Shaped:
    text: str  # JSON matching the format
    usage: Usage


async def shape_answer(
    model: ReasoningModel,
    fmt: AnswerFormat,
    *,
    question: str,
    answer: str,
    sources: Sequence[Source],
) -> AsyncIterator[str | Shaped]:
    """The JSON answer's text as it streams, then the checked result with its usage."""
    request = ChatRequest(
        messages=shape_prompt(fmt, question, answer, sources),
        max_tokens=SHAPE_MAX_TOKENS,
        response_format=fmt.wire(),
    )
    result: ChatResult | None = None
    sent = False
    try:
        try:
            async for piece in model.stream_chat(request):
                if isinstance(piece, ChatResult):
                    result = piece
                elif piece.kind == "content" and piece.text:
                    sent = True
                    yield piece.text
        except ModelRequestError:
            if sent:
                raise
            # A server without structured outputs refuses the field: ask without it (the
            # schema is in the prompt) and let the check below judge the answer.
            log.info("the model server refused response_format; formatting without it")
            async for piece in model.stream_chat(replace(request, response_format=None)):
                if isinstance(piece, ChatResult):
                    result = piece
                elif piece.kind == "content" and piece.text:
                    yield piece.text
    except ModelError as exc:
        raise RunFailedError(run_error_kind(exc), f"formatting the answer as JSON: {exc}") from exc
    if result is None:
        raise AnswerFormatError("the model sent no answer to format; retry")
    yield Shaped(fmt.check(result.content.strip()), result.usage)
