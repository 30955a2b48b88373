"""`ResponseBuilder`: a run's agent events folded into a Responses API object, and the
stream events (`response.created` ... `response.completed`) that build it on a client.

One fold serves the stream, the non-streamed answer and `GET /v1/responses/{id}` (which
replays the stored events), so all three agree. Items, in the order the run made them:
- `reasoning`: the agent's thinking, as `reasoning_text` content (it is the raw thought,
  not a summary), or as `summary_text` when the client asked for a reasoning summary
  (clients that only render summaries then still show progress);
- `file_search_call`: each `search`, with its query and the passages found (other tools
  appear in the reasoning as bracketed notes, as on the chat route);
- `message`: the answer as `output_text`, each `[n]` citation a `file_citation`
  annotation naming the document (`file_id`) and its source file (`filename`).
With a JSON answer format the cited prose answer stays in the reasoning and the message
holds the JSON that `serving.http.answer_format` writes afterwards (`shaped_*`).
"""

from __future__ import annotations

import json
import re
import time
from typing import Literal

from pydantic import JsonValue

from agent.events import (
    AnswerDelta,
    Event,
    ReasoningDelta,
    RunError,
    RunFinished,
    Source,
    ToolCallEvent,
    ToolResultEvent,
)
from agent.llm.types import Usage
from serving.http.responses_wire import (
    FileCitation,
    FileSearchCall,
    FileSearchResult,
    MessageItem,
    OutputText,
    ReasoningItem,
    ReasoningText,
    ResponseErrorOut,
    ResponseObject,
    ResponseUsage,
)

JsonObject = dict[str, JsonValue]
_CITATION = re.compile(r"\[(\d+)\]")


def sources_markdown(sources: list[Source]) -> str:
    if not sources:
        return ""
    lines = [f"[{s.number}] {s.title or s.doc_id} ({s.source})" for s in sources]
    return "\n\nSources:\n" + "\n".join(lines)


def citations(text: str, sources: list[Source]) -> list[FileCitation]:
    """One `file_citation` per `[n]` marker of a cited source, indexed just after it."""
    by_number = {s.number: s for s in sources}
    found = []
    for m in _CITATION.finditer(text):
        source = by_number.get(int(m.group(1)))
        if source is not None:
            found.append(FileCitation(file_id=source.doc_id, filename=source.source, index=m.end()))
    return found


def usage_out(usage: Usage) -> ResponseUsage:
    return ResponseUsage(
        input_tokens=usage.prompt_tokens,
        input_tokens_details={"cached_tokens": usage.cached_tokens},
        output_tokens=usage.completion_tokens,
        output_tokens_details={"reasoning_tokens": usage.reasoning_tokens},
        total_tokens=usage.total_tokens,
    )


class ResponseBuilder:
    def __init__(
        self,
        response: ResponseObject,
        *,
        summary: bool = False,
        shaped: bool = False,
        sources_in_content: bool = True,
    ) -> None:
        self.response = response
        self.finished: RunFinished | None = None
        self.failure: RunError | None = None
        self._summary, self._shaped, self._sources_in_content = summary, shaped, sources_in_content
        self._seq = 0
        self._key = response.id.removeprefix("resp_")
        self._open: ReasoningItem | MessageItem | None = None
        self._calls: dict[str, FileSearchCall] = {}
        self._answered = False

    # -- framing ----------------------------------------------------------------------
    def _event(self, type_: str, **fields: object) -> JsonObject:
        self._seq += 1
        out: JsonObject = {"type": type_, "sequence_number": self._seq}
        for key, value in fields.items():
            dump = getattr(value, "model_dump", None)
            out[key] = dump(mode="json") if dump is not None else value  # type: ignore[assignment]
        return out

    def _index(self, item: object) -> int:
        return next(i for i, it in enumerate(self.response.output) if it is item)

    def _item_id(self, prefix: str) -> str:
        return f"{prefix}_{self._key}{len(self.response.output):03d}"

    def start(self) -> list[JsonObject]:
        return [
            self._event("response.created", response=self.response),
            self._event("response.in_progress", response=self.response),
        ]

    # -- reasoning and message items --------------------------------------------------
    def _reasoning(self, text: str) -> list[JsonObject]:
        out: list[JsonObject] = []
        item = self._open
        if not isinstance(item, ReasoningItem):
            out += self._close()
            item = ReasoningItem(id=self._item_id("rs"))
            self.response.output.append(item)
            self._open = item
            out.append(
                self._event("response.output_item.added", item=item, output_index=self._index(item))
            )
            part = ReasoningText(type="summary_text" if self._summary else "reasoning_text")
            (item.summary if self._summary else item.content).append(part)
            out.append(self._part_event("added", item, part))
        part = (item.summary if self._summary else item.content)[0]
        part.text += text
        where = {"item_id": item.id, "output_index": self._index(item)}
        if self._summary:
            out.append(
                self._event(
                    "response.reasoning_summary_text.delta", **where, summary_index=0, delta=text
                )
            )
        else:
            out.append(
                self._event("response.reasoning_text.delta", **where, content_index=0, delta=text)
            )
        return out

    def _part_event(
        self, what: Literal["added", "done"], item: ReasoningItem, part: ReasoningText
    ) -> JsonObject:
        where = {"item_id": item.id, "output_index": self._index(item)}
        if self._summary:
            return self._event(
                f"response.reasoning_summary_part.{what}", **where, summary_index=0, part=part
            )
        return self._event(f"response.content_part.{what}", **where, content_index=0, part=part)

    def _message_text(self, text: str) -> list[JsonObject]:
        out: list[JsonObject] = []
        item = self._open
        if not isinstance(item, MessageItem):
            out += self._close()
            item = MessageItem(id=self._item_id("msg"))
            self.response.output.append(item)
            self._open = item
            where = {"item_id": item.id, "output_index": self._index(item)}
            out.append(
                self._event(
                    "response.output_item.added", item=item, output_index=where["output_index"]
                )
            )
            part = OutputText()
            item.content.append(part)
            out.append(
                self._event("response.content_part.added", **where, content_index=0, part=part)
            )
        if text:
            item.content[0].text += text
            out.append(self._event(
                "response.output_text.delta", item_id=item.id, output_index=self._index(item),
                content_index=0, delta=text, logprobs=[],
            ))  # fmt: skip
        return out

    def _close(
        self,
        status: Literal["completed", "incomplete"] = "completed",
        sources: list[Source] | None = None,
        cited_length: int = 0,
    ) -> list[JsonObject]:
        """Finish the open reasoning or message item."""
        item, self._open = self._open, None
        if item is None:
            return []
        out: list[JsonObject] = []
        where = {"item_id": item.id, "output_index": self._index(item)}
        if isinstance(item, ReasoningItem):
            part = (item.summary if self._summary else item.content)[0]
            kind = "reasoning_summary_text" if self._summary else "reasoning_text"
            index = {"summary_index": 0} if self._summary else {"content_index": 0}
            out.append(self._event(f"response.{kind}.done", **where, **index, text=part.text))
            out.append(self._part_event("done", item, part))
        else:
            part_out = item.content[0]
            for n, note in enumerate(citations(part_out.text[:cited_length], sources or [])):
                part_out.annotations.append(note)
                out.append(self._event(
                    "response.output_text.annotation.added", **where, content_index=0,
                    annotation_index=n, annotation=note,
                ))  # fmt: skip
            out.append(
                self._event(
                    "response.output_text.done",
                    **where,
                    content_index=0,
                    text=part_out.text,
                    logprobs=[],
                )
            )
            out.append(
                self._event("response.content_part.done", **where, content_index=0, part=part_out)
            )
        item.status = status
        out.append(
            self._event("response.output_item.done", item=item, output_index=where["output_index"])
        )
        return out

    # -- file searches ----------------------------------------------------------------
    def _search(self, event: ToolCallEvent) -> list[JsonObject]:
        try:
            args = json.loads(event.arguments)
        except json.JSONDecodeError:
            args = {}
        query = args.get("query") if isinstance(args, dict) else None
        out = self._close()
        call = FileSearchCall(
            id=self._item_id("fs"), queries=[str(query or event.arguments)], status="in_progress"
        )
        self.response.output.append(call)
        self._calls[event.call_id] = call
        where = {"item_id": call.id, "output_index": self._index(call)}
        out.append(
            self._event("response.output_item.added", item=call, output_index=where["output_index"])
        )
        out.append(self._event("response.file_search_call.in_progress", **where))
        call.status = "searching"
        out.append(self._event("response.file_search_call.searching", **where))
        return out

    def _found(self, event: ToolResultEvent) -> list[JsonObject]:
        call = self._calls.pop(event.call_id)
        call.results = [
            FileSearchResult(
                file_id=h.doc_id, filename=h.source, score=h.score, text=h.snippet,
                attributes={"citation": h.number, "title": h.title, "passage_id": h.passage_id},
            )
            for h in event.hits
        ]  # fmt: skip
        call.status = "completed" if event.ok else "failed"
        where = {"item_id": call.id, "output_index": self._index(call)}
        out = [self._event("response.file_search_call.completed", **where)] if event.ok else []
        return [
            *out,
            self._event("response.output_item.done", item=call, output_index=where["output_index"]),
        ]

    def _end_calls(self) -> list[JsonObject]:
        out = []
        for call in self._calls.values():
            call.status = "incomplete"
            out.append(
                self._event("response.output_item.done", item=call, output_index=self._index(call))
            )
        self._calls.clear()
        return out

    # -- the fold ---------------------------------------------------------------------
    def feed(self, event: Event) -> list[JsonObject]:
        """The stream events one agent event makes (the object is updated as it goes)."""
        if isinstance(event, ReasoningDelta):
            return self._reasoning(event.text)
        if isinstance(event, ToolCallEvent):
            if event.name == "search":
                return self._search(event)
            return self._reasoning(f"\n[{event.name} {event.arguments}]\n")
        if isinstance(event, ToolResultEvent):
            return self._found(event) if event.call_id in self._calls else []
        if isinstance(event, AnswerDelta):
            self._answered = True
            return self._reasoning(event.text) if self._shaped else self._message_text(event.text)
        if isinstance(event, RunFinished):
            self.finished = event
            if self._shaped:
                return self._close() + self._end_calls()
            out = self._end_calls()
            if not self._answered:
                out += self._message_text(event.answer)
            cited = len(self._open.content[0].text) if isinstance(self._open, MessageItem) else 0
            if self._sources_in_content:
                out += self._message_text(sources_markdown(event.sources))
            out += self._close(sources=event.sources, cited_length=cited)
            return out + self._complete(event.usage)
        if isinstance(event, RunError):
            self.failure = event
            return self.fail(event.kind, event.message, cancelled=event.kind == "cancelled")
        return []

    def shaped_delta(self, text: str) -> list[JsonObject]:
        return self._message_text(text)

    def shaped_done(self, text: str, usage: Usage) -> list[JsonObject]:
        """Finish with the checked JSON answer (the message already holds its deltas)."""
        out = [] if isinstance(self._open, MessageItem) else self._message_text(text)
        if isinstance(self._open, MessageItem):
            self._open.content[0].text = text
        out += self._close()
        base = self.finished.usage if self.finished is not None else Usage()
        return out + self._complete(base + usage)

    def _complete(self, usage: Usage) -> list[JsonObject]:
        self.response.status = "completed"
        self.response.completed_at = time.time()
        self.response.usage = usage_out(usage)
        return [self._event("response.completed", response=self.response)]

    def fail(self, code: str, message: str, *, cancelled: bool = False) -> list[JsonObject]:
        out = self._close("incomplete") + self._end_calls()
        self.response.status = "cancelled" if cancelled else "failed"
        wire_code = "rate_limit_exceeded" if code == "model_rate_limited" else "server_error"
        self.response.error = ResponseErrorOut(code=wire_code, message=f"{code}: {message}")
        if self.finished is not None:
            self.response.usage = usage_out(self.finished.usage)
        return [*out, self._event("response.failed", response=self.response)]

    def incomplete(self) -> None:
        """The run stopped here without an answer or an error (a restart cut it off)."""
        self._close("incomplete")
        self._end_calls()
