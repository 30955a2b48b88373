"""The research loop as a LangGraph state graph, wired in one place.

    START -> start -> [plan] -> [prefetch] -> reason
    reason -> act | answer | finalize | reason
    act    -> condense | reason
    condense -> reason
    answer, finalize -> END

`build_graph(deps)` returns the uncompiled graph; the runner compiles it with a
checkpointer. Nothing is built or compiled at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from langgraph.graph import END, START, StateGraph

from agent.actions import select_protocol
from agent.actions.base import ProtocolDeps
from agent.config import AgentConfig
from agent.llm.types import ReasoningModel
from agent.nodes.act import make_act
from agent.nodes.answer import make_answer
from agent.nodes.common import NodeDeps
from agent.nodes.condense import make_condense
from agent.nodes.finalize import make_finalize
from agent.nodes.plan import make_plan
from agent.nodes.prefetch import make_prefetch
from agent.nodes.reason import make_reason
from agent.nodes.start import make_start
from agent.prompts import Prompts
from agent.state import AgentState, ResearchInput
from agent.tools.base import Tool, ToolBox
from retrieval.types import Retriever

AfterStart = Literal["plan", "prefetch", "reason"]
AfterPlan = Literal["prefetch", "reason"]
AfterReason = Literal["act", "answer", "finalize", "reason"]
AfterAct = Literal["condense", "reason"]


def default_tools(config: AgentConfig) -> list[Tool]:
    from agent.tools.calculator import CalculatorTool
    from agent.tools.fetch_url import FetchUrlTool
    from agent.tools.open import OpenTool
    from agent.tools.search import SearchTool

    tools: list[Tool] = [SearchTool(), OpenTool(), CalculatorTool()]
    if config.enable_fetch_url:
        tools.append(FetchUrlTool())
    return tools


def make_deps(
    model: ReasoningModel,
    retriever: Retriever,
    config: AgentConfig,
    tools: Sequence[Tool] | None = None,
) -> NodeDeps:
    toolbox = ToolBox(list(tools) if tools is not None else default_tools(config))
    prompts = Prompts(config)
    protocol = select_protocol(ProtocolDeps(model, config, prompts, toolbox))
    return NodeDeps(model, retriever, config, toolbox, protocol, prompts)


def after_start(state: AgentState, config: AgentConfig) -> AfterStart:
    if config.plan:
        return "plan"
    return "prefetch" if config.retrieval_first else "reason"


def after_reason(state: AgentState) -> AfterReason:
    if state.stop_reason:
        return "finalize"
    if state.draft is not None:
        return "answer"
    if state.pending:
        return "act"
    return "reason"


def after_act(state: AgentState) -> AfterAct:
    return "condense" if state.pending_results else "reason"


Graph = StateGraph[AgentState, None, ResearchInput, AgentState]


def build_graph(deps: NodeDeps) -> Graph:
    cfg = deps.config
    graph: Graph = StateGraph(AgentState, input_schema=ResearchInput)
    graph.add_node("start", make_start(deps))
    graph.add_node("plan", make_plan(deps))
    graph.add_node("prefetch", make_prefetch(deps))
    graph.add_node("reason", make_reason(deps))
    graph.add_node("act", make_act(deps))
    graph.add_node("condense", make_condense(deps))
    graph.add_node("answer", make_answer(deps))
    graph.add_node("finalize", make_finalize(deps))

    def route_start(state: AgentState) -> AfterStart:
        return after_start(state, cfg)

    def route_plan(state: AgentState) -> AfterPlan:
        return "prefetch" if cfg.retrieval_first else "reason"

    graph.add_edge(START, "start")
    graph.add_conditional_edges("start", route_start)
    graph.add_conditional_edges("plan", route_plan)
    graph.add_edge("prefetch", "reason")
    graph.add_conditional_edges("reason", after_reason)
    graph.add_conditional_edges("act", after_act)
    graph.add_edge("condense", "reason")
    graph.add_edge("answer", END)
    graph.add_edge("finalize", END)
    return graph
