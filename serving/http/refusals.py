"""Refusing, by name, request parameters the agent cannot honour.

The compatibility APIs ignore fields they do not know (see `serving.http.wire`), but a
field a client sends *expecting an effect* (user tools, stop sequences,
log-probabilities, a background response, a human-in-the-loop pause...) must not be dropped: the
client would take the answer as one that honoured it. Each such field, when set to
anything but its neutral value, gets a 400 that names it and says what to do instead.
"""

from __future__ import annotations

from serving.http.errors import BadRequestError
from serving.http.responses_wire import ResponseCreate
from serving.http.wire import ChatCompletionRequest, RunCreate, ThreadSearch


def _set(value: object) -> bool:
    """True when a client asked for something (None, empty and False ask for nothing)."""
    return value not in (None, False, "", [], {})


def _refuse(param: str, why: str) -> BadRequestError:
    return BadRequestError(f"`{param}` is not supported: {why}", param=param)


def check_chat_request(body: ChatCompletionRequest) -> None:
    """400 for the first chat-completions parameter this service would otherwise ignore."""
    agent = "the research agent chooses and runs its own tools"
    if _set(body.tools) or _set(body.functions):
        name = "tools" if _set(body.tools) else "functions"
        raise _refuse(name, f"{agent}; remove `{name}` (to use your own tools, call a plain model)")
    for name in ("tool_choice", "function_call"):
        value = getattr(body, name)
        if _set(value) and value not in ("none", "auto"):
            raise _refuse(name, f"{agent}; remove `{name}`")
    if _set(body.stop):
        raise _refuse("stop", "the answer always runs to its end with its sources; remove it")
    if body.logprobs or (body.top_logprobs or 0) > 0:
        name = "logprobs" if body.logprobs else "top_logprobs"
        raise _refuse(name, "the answer is composed over several model calls; remove it")
    if _set(body.logit_bias):
        raise _refuse("logit_bias", "remove it")
    if (body.n or 1) != 1:
        raise _refuse("n", "one research run gives one answer; send n=1 or leave it out")
    if _set(body.audio) or (
        isinstance(body.modalities, list) and any(m != "text" for m in body.modalities)
    ):
        raise _refuse(
            "audio" if _set(body.audio) else "modalities", "answers are text only; remove it"
        )
    if _set(body.prediction):
        raise _refuse("prediction", "remove it")
    if _set(body.web_search_options):
        raise _refuse(
            "web_search_options", "the agent searches your documents, not the web; remove it"
        )
    for i, message in enumerate(body.messages):
        if isinstance(message.content, list):
            for j, part in enumerate(message.content):
                if part.type != "text":
                    raise _refuse(
                        f"messages[{i}].content[{j}].type",
                        f"only text parts are read, not {part.type!r}; send the text instead",
                    )


def check_run_create(body: RunCreate) -> None:
    """400 for the first LangGraph run parameter this service would otherwise ignore."""
    for name in ("interrupt_before", "interrupt_after"):
        if _set(getattr(body, name)):
            raise _refuse(name, "this server has no human-in-the-loop pauses yet; remove it")
    if _set(body.command):
        raise _refuse(
            "command", "nothing on this server pauses for a resume or goto; send `input` instead"
        )
    if _set(body.checkpoint) or _set(body.checkpoint_id):
        name = "checkpoint" if _set(body.checkpoint) else "checkpoint_id"
        raise _refuse(name, "runs always continue from the thread's latest state; remove it")
    if body.multitask_strategy in ("interrupt", "rollback"):
        raise _refuse(
            "multitask_strategy",
            f"{body.multitask_strategy!r} is not implemented; use 'reject' (the default) or "
            "'enqueue', or cancel the running run first",
        )
    if body.after_seconds:
        raise _refuse("after_seconds", "runs start at once; schedule the request yourself")
    if body.webhook:
        raise _refuse("webhook", "poll the run or join its stream instead")


def check_thread_search(body: ThreadSearch) -> None:
    for name in ("select", "extract"):
        if _set(getattr(body, name)):
            raise _refuse(name, "whole threads are returned; remove it")


# What `include` may ask for: search results are always included, so asking is honoured.
_INCLUDABLE = frozenset({"file_search_call.results"})


def check_response_create(body: ResponseCreate) -> None:
    """400 for the first Responses API parameter this service would otherwise ignore."""
    agent = "the research agent chooses and runs its own tools"
    if _set(body.tools):
        raise _refuse(
            "tools", f"{agent}; remove `tools` (to use your own tools, call a plain model)"
        )
    if _set(body.tool_choice) and body.tool_choice not in ("none", "auto"):
        raise _refuse("tool_choice", f"{agent}; remove `tool_choice` or send 'auto'")
    if body.background:
        raise _refuse(
            "background",
            "a response runs while its request is open; send stream=true to follow it, and "
            "GET /v1/responses/{id} reads it afterwards",
        )
    if _set(body.include):
        asked = body.include if isinstance(body.include, list) else [body.include]
        for i, value in enumerate(asked):
            if value not in _INCLUDABLE:
                raise _refuse(
                    f"include[{i}]",
                    f"{value!r} cannot be included (search results always are); remove it",
                )
    if body.max_output_tokens is not None:
        raise _refuse(
            "max_output_tokens",
            "the answer is written over several model calls and always runs to its end; "
            "limit the run with extra_body={'thinkrag': {'max_total_tokens': N}} instead",
        )
    if (body.top_logprobs or 0) > 0:
        raise _refuse("top_logprobs", "the answer is composed over several model calls; remove it")
    if _set(body.conversation):
        raise _refuse("conversation", "conversations are threads here: send previous_response_id")
    if _set(body.prompt):
        raise _refuse("prompt", "stored prompt templates do not exist here; send `input` text")
    for i, item in enumerate(body.items()):
        if item.type != "message":
            raise _refuse(
                f"input[{i}].type",
                f"only message items are read, not {item.type!r}; send the text as a message "
                "(earlier turns continue with previous_response_id)",
            )
        if isinstance(item.content, list):
            for j, part in enumerate(item.content):
                if part.type not in ("input_text", "output_text"):
                    raise _refuse(
                        f"input[{i}].content[{j}].type",
                        f"only text parts are read, not {part.type!r}; send the text instead",
                    )
