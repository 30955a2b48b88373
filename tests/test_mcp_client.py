"""MCP servers' tools as agent tools: real servers started as real processes.

`mcp-server-time` (the reference server published on PyPI, not written here) and a
deliberately broken server (`tests/mcp_servers/broken.py`); the scripted model calls
their tools through the real agent, and every failure ends as an observation or a
start-up warning while the run completes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.actions.tags import BEGIN_RESULT, BEGIN_TOOL, END_QUERY, END_TOOL
from agent.config import AgentConfig
from agent.events import ToolResultEvent
from agent.graph import default_tools
from agent.mcp.config import McpServerConfig
from agent.mcp.hub import McpHub
from agent.mcp.tool import make_tools
from serving.cli import app
from testing.scripted import ScriptedModelServer, ScriptedTurn
from tests.agent_support import call, collect, finished, make_agent

Factory = Callable[..., ScriptedModelServer]
TIME = McpServerConfig(
    name="time", command=[sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]
)


def broken(mode: str = "ok", **kw: object) -> McpServerConfig:
    return McpServerConfig.model_validate(
        {
            "name": f"broken-{mode}",
            "command": [sys.executable, "-m", "tests.mcp_servers.broken", mode],
            **kw,
        }
    )


@pytest.fixture(scope="module")
def hub() -> Iterator[McpHub]:
    """One hub per module, as one per process in the service: started once, closed once."""
    servers = [
        TIME,
        broken("ok", timeout_seconds=2, max_result_chars=300),
        broken("exit"),
        broken("silent", start_timeout_seconds=3),
    ]
    with McpHub(servers) as started:
        yield started


def _tool_results(events: list[object]) -> list[ToolResultEvent]:
    return [e for e in events if isinstance(e, ToolResultEvent)]


def test_start_up_reports_broken_servers_and_offers_the_rest(hub: McpHub) -> None:
    names = sorted(t.name for t in make_tools(hub))
    assert "time__get_current_time" in names and "time__convert_time" in names
    assert "broken-ok__hang" in names
    assert not [n for n in names if n.startswith(("broken-exit", "broken-silent"))]
    joined = "\n".join(hub.warnings)
    assert "'broken-exit' did not start" in joined
    assert "'broken-silent' did not start within 3 s" in joined


@pytest.mark.parametrize("protocol", ["tools", "json", "tags"])
async def test_agent_calls_the_time_server_and_cites_it(
    hub: McpHub, scripted_model: Factory, protocol: str
) -> None:
    config = AgentConfig(top_k=2, protocol=protocol)  # type: ignore[arg-type]
    if protocol == "tools":
        first = ScriptedTurn(tool_calls=(call("time__get_current_time", timezone="UTC"),))
        answer = ScriptedTurn(content="It is Wednesday or later in UTC [1].")
    elif protocol == "tags":  # one growing raw prompt; the call is a tool-call tag
        request = {"name": "time__get_current_time", "arguments": {"timezone": "UTC"}}
        first = ScriptedTurn(
            text=f"<think>I need the time.{BEGIN_TOOL}{json.dumps(request)}{END_TOOL}unseen"
        )
        answer = ScriptedTurn(text="The clock said so.</think>It is late in UTC [1].")
    else:
        action = {"action": "time__get_current_time", "timezone": "UTC"}
        first = ScriptedTurn(content=json.dumps(action))
        answer = ScriptedTurn(
            content=json.dumps(
                {"action": "answer", "answer": "It is late in UTC [1].", "citations": [1]}
            )
        )
    model = scripted_model([first, answer])
    agent = make_agent(model.base_url, config, tools=[*default_tools(config), *make_tools(hub)])
    events = await collect(agent.run("What time is it in UTC?", thread_id="t", run_id="r"))
    await agent.aclose()
    done = finished(events)
    (result,) = _tool_results(events)
    assert result.ok and '"timezone": "UTC"' in result.observation
    assert result.observation.startswith("[1] time.get_current_time (mcp://time/get_current_time)")
    assert done.answer.endswith("[1].") and not done.removed_citations
    (source,) = done.sources
    assert (source.title, source.source) == ("time.get_current_time", "mcp://time/get_current_time")
    assert '"datetime"' in source.text
    # the tool was offered with the server's own schema
    body = json.dumps(model.requests[0].body)
    assert "time__get_current_time" in body and "IANA timezone name" in body
    if protocol == "tags":
        first_prompt, second_prompt = (r.body["prompt"] for r in model.requests)
        assert model.requests[0].body["stop"] == [END_QUERY, END_TOOL]
        # the next prompt continues the same text: the call (cut at its end tag), the result
        assert second_prompt.startswith(first_prompt + "<think>I need the time.")
        assert "unseen" not in second_prompt
        assert f"{END_TOOL}\n\n{BEGIN_RESULT}\n[1] time.get_current_time" in second_prompt


async def test_bad_arguments_are_checked_against_the_servers_schema(
    hub: McpHub, scripted_model: Factory
) -> None:
    model = scripted_model(
        [
            ScriptedTurn(tool_calls=(call("time__get_current_time", zone="UTC"),)),
            ScriptedTurn(content="I could not tell."),
        ]
    )
    agent = make_agent(model.base_url, tools=make_tools(hub))
    events = await collect(agent.run("time?", thread_id="t", run_id="r"))
    await agent.aclose()
    (result,) = _tool_results(events)
    assert not result.ok and "'timezone' is a required property" in result.observation
    assert finished(events).answer == "I could not tell."


async def test_hang_error_size_cap_and_non_text_become_observations(
    hub: McpHub, scripted_model: Factory
) -> None:
    calls = (
        call("broken-ok__hang"),
        call("broken-ok__fail", reason="quota"),
        call("broken-ok__long", n=5000),
        call("broken-ok__picture"),
    )
    model = scripted_model([ScriptedTurn(tool_calls=calls), ScriptedTurn(content="Done.")])
    agent = make_agent(model.base_url, tools=make_tools(hub))
    events = await collect(agent.run("try them", thread_id="t", run_id="r"))
    await agent.aclose()
    by_name = {r.name: r for r in _tool_results(events)}
    assert not by_name["broken-ok__hang"].ok
    assert "did not answer within 2 s" in by_name["broken-ok__hang"].observation
    assert not by_name["broken-ok__fail"].ok
    failed = by_name["broken-ok__fail"].observation
    assert "broken-ok.fail returned an error: " in failed and "cannot do that: quota" in failed
    long = by_name["broken-ok__long"]
    assert (
        long.ok and "[... cut: the result had 5000 characters, the cap is 300]" in long.observation
    )
    assert long.observation.count("x") <= 300
    assert by_name["broken-ok__picture"].ok
    assert "[image content omitted]" in by_name["broken-ok__picture"].observation
    assert finished(events).answer == "Done."


async def test_server_dying_mid_call_is_an_observation_then_unavailable(
    scripted_model: Factory,
) -> None:
    with McpHub([broken("ok", name="dying")]) as own:
        model = scripted_model(
            [
                ScriptedTurn(tool_calls=(call("dying__crash"),)),
                ScriptedTurn(tool_calls=(call("dying__long", n=10),)),
                ScriptedTurn(content="It broke."),
            ]
        )
        agent = make_agent(model.base_url, tools=make_tools(own))
        events = await collect(agent.run("crash it", thread_id="t", run_id="r"))
        await agent.aclose()
    crash, after = _tool_results(events)
    assert not crash.ok and "dying.crash failed" in crash.observation
    assert not after.ok and "'dying' is not available" in after.observation
    assert finished(events).answer == "It broke."


def test_list_tools_checks_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "thinkrag.toml"
    config.write_text(
        # the client config example of the README
        "[[mcp_servers]]\n"
        'name = "time"\n'
        f'command = [{json.dumps(sys.executable)}, "-m", "mcp_server_time"]\n'
        'tools = ["get_current_time", "no_such_tool"]\n'
        "timeout_seconds = 20\n"
        "max_result_chars = 4000\n"
        "\n[[mcp_servers]]\n"
        'name = "gone"\n'
        f'command = [{json.dumps(sys.executable)}, "-m", "tests.mcp_servers.broken", "exit"]\n'
    )
    result = CliRunner().invoke(app, ["mcp", "--list-tools", str(config)])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("time__get_current_time: ")
    assert "warning: MCP server 'gone' did not start" in result.stderr
    assert "warning: MCP server 'time' has no tool 'no_such_tool'" in result.stderr


def test_config_refuses_a_server_without_transport() -> None:
    with pytest.raises(ValueError, match="give exactly one of `command`"):
        McpServerConfig(name="x")
    with pytest.raises(ValueError, match="name"):
        McpServerConfig(name="has__underscores", url="http://127.0.0.1:1/mcp")
