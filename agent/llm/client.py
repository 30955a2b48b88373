"""`OpenAIClient`: the async OpenAI-protocol client the agent uses to talk to vLLM.

One pooled `httpx.AsyncClient` per client (pass `transport=` in tests). Every call has a
deadline (`Timeouts.total`) and retries connection failures, 429 and 5xx with jittered
back-off (`RetryPolicy`), never other 4xx and never once a stream has yielded. Failures
surface as the typed `agent.errors` tree with messages that name the fix. Closing a
stream early (break + `aclose()`, or cancelling the task) closes the upstream response, so
vLLM aborts the generation instead of burning tokens nobody reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from agent.errors import (
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelProtocolError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelServerError,
    ModelTimeoutError,
    ModelUsageError,
)
from agent.llm.policy import RetryPolicy, Timeouts, parse_retry_after
from agent.llm.sse import sse_json
from agent.llm.stream import ChatAssembly
from agent.llm.types import ChatRequest, ChatResult, CompletionResult, Delta
from agent.llm.wire import chat_body, completion_body, finish_reason, first_choice, parse_usage

__all__ = ["OpenAIClient", "RetryPolicy", "Timeouts"]


class OpenAIClient:
    """Implements `ReasoningModel` over `/v1/chat/completions` and `/v1/completions`.

    `base_url` is the OpenAI root ending in `/v1`; `/tokenize` and `/metrics` are read from
    the server root. With `model=None` the first model of `GET /v1/models` is used.
    `starts_in_reasoning=True` is for servers without a reasoning parser whose chat template
    pre-fills `<think>` (the content then starts mid-thought).
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        starts_in_reasoning: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ModelUsageError(
                f"base_url {base_url!r} is not an http(s) URL; pass e.g. http://127.0.0.1:8000/v1"
            )
        if url.path.rstrip("/") in ("", "/"):
            raise ModelUsageError(
                f"base_url {base_url!r} has no path; the OpenAI API lives under /v1: "
                f"pass {base_url.rstrip('/')}/v1"
            )
        self.base_url = base_url.rstrip("/")
        self.root_url = self.base_url.removesuffix("/v1")
        self._model = model
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self._starts_in_reasoning = starts_in_reasoning
        self._rng = rng or random.Random()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        t = self.timeouts
        self._http = httpx.AsyncClient(
            transport=transport,
            headers=headers,
            timeout=httpx.Timeout(
                connect=t.connect, read=None, write=t.between_chunks, pool=t.connect
            ),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    # -- ReasoningModel ---------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        """The model sent in requests ("" until resolved from /v1/models when not given)."""
        return self._model or ""

    async def chat(self, request: ChatRequest) -> ChatResult:
        deadline = self._deadline()
        model = await self._resolve_model()
        url = f"{self.base_url}/chat/completions"
        payload = await self._post_json(url, chat_body(request, model, stream=False), deadline)
        choice = first_choice(payload)
        if choice is None:
            raise ModelProtocolError(f"{url}: the response has an empty `choices` list")
        assembly = ChatAssembly(starts_in_reasoning=self._starts_in_reasoning)
        assembly.absorb_message(payload, choice)
        return assembly.result(model)

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[Delta | ChatResult]:
        """Yield `Delta`s as they arrive, then the assembled `ChatResult`.

        Deltas of the missing-opening-`<think>` shape are provisional (see `agent.llm.think`);
        the final `ChatResult` is authoritative. `thinking_token_budget` is sent to vLLM and
        also enforced here as a safety net: vLLM 0.32 only counts after a `<think>` token (in
        the prompt or the output), so a model that never writes it thinks on unbounded. Past
        the budget the stream is closed and the result has `thinking_budget_exhausted=True`.
        """
        loop = asyncio.get_running_loop()
        deadline = self._deadline()
        model = await self._resolve_model()
        url = f"{self.base_url}/chat/completions"
        body = chat_body(request, model, stream=True)
        first_deadline = loop.time() + self.timeouts.first_byte
        resp = await self._send("POST", url, body, deadline, first_deadline=first_deadline)
        assembly = ChatAssembly(starts_in_reasoning=self._starts_in_reasoning)
        budget = request.thinking_token_budget
        events = sse_json(
            resp,
            first_deadline=first_deadline,
            between_chunks=self.timeouts.between_chunks,
            deadline=deadline,
            url=url,
        )
        try:
            async with contextlib.aclosing(events):
                async for payload in events:
                    for delta in assembly.absorb_chunk(_require_object(payload, url)):
                        yield delta
                    if budget is not None and assembly.over_thinking_budget(budget):
                        assembly.cut_for_budget()  # closing the response aborts it in vLLM
                        break
            for delta in assembly.flush():
                yield delta
        finally:
            await resp.aclose()
        if not assembly.finished:
            raise ModelProtocolError(
                f"{url}: the stream ended without a finish_reason; the server aborted the "
                "request; check the vLLM log"
            )
        yield assembly.result(model)

    async def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 512,
        stop: Sequence[str] = (),
        include_stop_str_in_output: bool = False,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> CompletionResult:
        deadline = self._deadline()
        model = await self._resolve_model()
        url = f"{self.base_url}/completions"
        body = completion_body(
            model,
            prompt,
            max_tokens=max_tokens,
            stop=stop,
            include_stop_str_in_output=include_stop_str_in_output,
            temperature=temperature,
            seed=seed,
        )
        payload = await self._post_json(url, body, deadline)
        choice = first_choice(payload)
        if choice is None:
            raise ModelProtocolError(f"{url}: the response has an empty `choices` list")
        stop_reason = choice.get("stop_reason")
        return CompletionResult(
            text=str(choice.get("text") or ""),
            finish_reason=finish_reason(choice.get("finish_reason"), False),
            stop_reason=stop_reason if isinstance(stop_reason, str) else None,
            usage=parse_usage(payload.get("usage")),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> OpenAIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- extras ----------------------------------------------------------------------------
    async def list_models(self) -> list[str]:
        url = f"{self.base_url}/models"
        payload = await self._request_json("GET", url, None, self._deadline())
        data = _require_object(payload, url).get("data")
        if not isinstance(data, list):
            raise ModelProtocolError(f"{url}: expected a `data` list of models")
        return [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]

    async def tokenize(self, text: str) -> list[int] | None:
        """Token ids from vLLM's `/tokenize`; None when the server has no such endpoint."""
        url = f"{self.root_url}/tokenize"
        body = {"model": await self._resolve_model(), "prompt": text}
        try:
            payload = await self._request_json("POST", url, body, self._deadline())
        except ModelRequestError as exc:
            if exc.status in (404, 405):
                return None
            raise
        tokens = _require_object(payload, url).get("tokens")
        if not isinstance(tokens, list):
            raise ModelProtocolError(f"{url}: expected a `tokens` list")
        return [int(t) for t in tokens]

    async def metrics_text(self) -> str:
        """Prometheus text of the server's `/metrics` (prefix-cache hits, token counters)."""
        url = f"{self.root_url}/metrics"
        resp = await self._send("GET", url, None, self._deadline())
        try:
            return (await resp.aread()).decode("utf-8", "replace")
        finally:
            await resp.aclose()

    # -- plumbing --------------------------------------------------------------------------
    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.timeouts.total

    async def _resolve_model(self) -> str:
        if self._model is None:
            models = await self.list_models()
            if not models:
                raise ModelProtocolError(
                    f"{self.base_url}/models lists no models; start vLLM with --model "
                    "(and --served-model-name) or pass model= to OpenAIClient"
                )
            self._model = models[0]
        return self._model

    async def _post_json(self, url: str, body: dict[str, Any], deadline: float) -> Any:
        return await self._request_json("POST", url, body, deadline)

    async def _request_json(
        self, method: str, url: str, body: dict[str, Any] | None, deadline: float
    ) -> Any:
        resp = await self._send(method, url, body, deadline)
        try:
            async with asyncio.timeout_at(deadline):
                raw = await resp.aread()
        except TimeoutError:
            raise ModelTimeoutError(
                f"{url}: the 'total' timeout ran out reading the response; raise Timeouts.total"
            ) from None
        except httpx.TransportError as exc:
            raise ModelProtocolError(f"{url}: the response body was cut ({exc}); retry") from exc
        finally:
            await resp.aclose()
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ModelProtocolError(
                f"{url}: the response is not JSON ({exc}): {raw[:200]!r}; is base_url an "
                "OpenAI-compatible server?"
            ) from exc

    async def _send(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        deadline: float,
        *,
        first_deadline: float | None = None,
    ) -> httpx.Response:
        """Send with retries; return a streaming response with a 2xx status (caller closes)."""
        loop = asyncio.get_running_loop()
        retry_number = 0
        while True:
            limit = min(deadline, first_deadline) if first_deadline is not None else deadline
            request = self._http.build_request(method, url, json=body)
            failure: ModelError
            retry_after: float | None = None
            try:
                async with asyncio.timeout_at(limit):
                    resp = await self._http.send(request, stream=True)
            except TimeoutError:
                phase = "first byte" if limit != deadline else "total"
                raise ModelTimeoutError(
                    f"{url}: no response within the '{phase}' timeout; the server is busy "
                    "or stuck; raise Timeouts.first_byte/total or check the vLLM server"
                ) from None
            except httpx.ConnectTimeout as exc:
                failure = ModelTimeoutError(
                    f"{url}: connecting timed out after {self.timeouts.connect}s; is the "
                    "server up and the address right?"
                )
                failure.__cause__ = exc
            except httpx.TransportError as exc:
                failure = ModelConnectionError(
                    f"{url}: cannot reach the model server ({type(exc).__name__}: {exc}); "
                    "start vLLM or fix base_url"
                )
                failure.__cause__ = exc
            else:
                if resp.status_code < 400:
                    return resp
                try:
                    text = (await resp.aread()).decode("utf-8", "replace")
                except httpx.TransportError:
                    text = ""
                finally:
                    await resp.aclose()
                failure = _http_error(resp.status_code, text)
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                if isinstance(failure, ModelRequestError):
                    raise failure
            if retry_number + 1 >= self.retry.attempts:
                _note_attempts(failure, retry_number + 1)
                raise failure
            pause = (
                retry_after
                if retry_after is not None
                else self.retry.backoff(retry_number, self._rng)
            )
            if loop.time() + pause >= deadline:
                _note_attempts(failure, retry_number + 1)
                raise failure
            await asyncio.sleep(pause)
            retry_number += 1


def _require_object(payload: Any, url: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ModelProtocolError(f"{url}: expected a JSON object, got {type(payload).__name__}")
    return payload


def _error_text(text: str) -> str:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text.strip()[:500] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])
    return text.strip()[:500]


def _hint(status: int, message: str) -> str:
    low = message.lower()
    if "tool" in low and ("auto" in low or "parser" in low):
        return (
            "start vLLM with --enable-auto-tool-choice --tool-call-parser <parser> "
            "(hermes for Qwen3, openai for gpt-oss)"
        )
    if "thinking_token_budget" in low:
        return "start vLLM with --reasoning-parser <name>, or leave thinking_token_budget unset"
    if "context length" in low or "max_model_len" in low or "maximum model length" in low:
        return "shorten the prompt or max_tokens, or raise vLLM's --max-model-len"
    if status == 404 and "model" in low:
        return "pass a model listed by GET /v1/models (vLLM's --served-model-name)"
    if status in (401, 403):
        return "pass api_key= matching the server's --api-key"
    if status == 429:
        return "the server is overloaded: lower concurrency or raise RetryPolicy.attempts"
    if status >= 500:
        return "the server failed; check the vLLM log (out of memory, crashed worker)"
    return "fix the request; the server's message says what it rejected"


def _http_error(status: int, text: str) -> ModelHTTPError:
    message = _error_text(text)
    full = f"{message} -- fix: {_hint(status, message)}"
    if status == 429:
        return ModelRateLimitedError(status, full)
    if status >= 500:
        return ModelServerError(status, full)
    return ModelRequestError(status, full)


def _note_attempts(failure: ModelError, attempts: int) -> None:
    failure.attempts = attempts
    if attempts > 1:
        failure.args = (f"{failure.args[0]} (gave up after {attempts} attempts)",)
