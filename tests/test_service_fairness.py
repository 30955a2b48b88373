"""Fair use of the execution slots and of the rate limit (issue 12, D9), on a real server.

One key at its per-key cap of executing runs cannot keep another key's run from starting;
with keys off, a trusted proxy's X-Forwarded-For gives each client its own limits, and
the header of any other peer is ignored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import httpx
import pytest

from serving.http.fair_slots import FairSlots
from testing.scripted import ScriptedTurn, ScriptRequest
from tests.test_service_support import ModelFactory, ThreadServer, research_turn, service_settings


def _status(url: str, run_id: str, key: str) -> str:
    auth = {"Authorization": f"Bearer {key}"}
    return str(httpx.get(f"{url}/v1/runs/{run_id}", headers=auth).json()["status"])


def test_second_key_runs_while_the_first_is_at_its_limit(
    tmp_path: Path, scripted_model: ModelFactory
) -> None:
    def slow(req: ScriptRequest) -> ScriptedTurn:
        turn = research_turn(req)
        if turn.tool_calls:  # each run's first model call takes a while (without blocking)
            return dataclasses.replace(turn, first_byte_delay=3.0)
        return turn

    model = scripted_model(slow)
    settings = service_settings(
        tmp_path, model.base_url, api_keys="alpha,beta", max_active_runs=2,
        max_active_runs_per_key=1,
    )  # fmt: skip
    with ThreadServer(settings) as server:

        def start(key: str, question: str) -> str:
            auth = {"Authorization": f"Bearer {key}"}
            r = httpx.post(server.url + "/v1/runs", json={"question": question}, headers=auth)
            assert r.status_code == 202, r.text
            return str(r.json()["run_id"])

        first = start("alpha", "alpha one?")
        second = start("alpha", "alpha two?")
        other = start("beta", "beta one?")
        time.sleep(0.5)  # well inside the first model call of the runs that started
        # alpha is at its cap of one executing run; the free slot went to beta, not to
        # alpha's second run, which waits although it was submitted first.
        assert _status(server.url, first, "alpha") == "running"
        assert _status(server.url, other, "beta") == "running"
        assert _status(server.url, second, "alpha") == "pending"
        deadline = time.monotonic() + 30
        while _status(server.url, second, "alpha") != "success":
            assert time.monotonic() < deadline, "alpha's queued run never ran"
            time.sleep(0.1)


@pytest.mark.parametrize("trusted", [True, False])
def test_client_identity_from_a_trusted_proxy_only(
    tmp_path: Path, scripted_model: ModelFactory, trusted: bool
) -> None:
    model = scripted_model(research_turn)
    settings = service_settings(
        tmp_path, model.base_url, requests_per_minute=20,
        trusted_proxies="127.0.0.1" if trusted else "",
    )  # fmt: skip
    with ThreadServer(settings) as server:

        def get(client: str) -> int:
            headers = {"X-Forwarded-For": client}
            return httpx.get(server.url + "/v1/models", headers=headers).status_code

        codes = [get("203.0.113.7") for _ in range(12)]
        assert 429 in codes  # the burst of one client is spent
        other = get("198.51.100.9")
    # Behind a trusted proxy the second client has its own budget; from an untrusted peer
    # the header is ignored and both "clients" are the one peer.
    assert other == (200 if trusted else 429)


def test_fair_slots_skip_a_key_at_its_cap() -> None:
    async def scenario() -> list[str]:
        slots = FairSlots(total=2, per_key=1)
        order: list[str] = []
        gate = asyncio.Event()

        async def run(key: str, name: str) -> None:
            async with slots.hold(key):
                order.append(name)
                await gate.wait()

        tasks = [asyncio.create_task(run(k, n)) for k, n in
                 [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1")]]  # fmt: skip
        await asyncio.sleep(0.01)
        assert order == ["a1", "b1"] and slots.in_use == 2
        tasks[1].cancel()  # a waiter that gives up leaves no slot taken
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert slots.in_use == 0
        return order

    assert asyncio.run(scenario()) == ["a1", "b1", "a3"]
