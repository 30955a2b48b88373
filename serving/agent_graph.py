"""thinkrag's research graph for any LangGraph server (`langgraph.json` points here).

`make_graph` is a graph factory: the server calls it when it needs the graph, and the
first call builds the runtime from `Settings` (the `THINKRAG_*` environment, as for
`thinkrag serve`) through the composition root, so the retriever, model client and
agent config are the ones thinkrag itself would use. Nothing is built at import time.
The graph is compiled without a checkpointer: the server brings its own (allow-list
`agent.state.STATE_TYPES` in its msgpack serde, as `langgraph.json` does).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from langchain_core.runnables import RunnableConfig


@cache
def _compiled() -> Any:
    from agent.graph import build_graph, make_deps
    from serving.runtime import build_runtime
    from serving.settings import load_settings

    runtime = build_runtime(load_settings())
    deps = make_deps(
        runtime.model_client(), runtime.retriever, runtime.agent_config, runtime.agent_tools()
    )
    return build_graph(deps).compile(name="research")


def make_graph(config: RunnableConfig) -> Any:
    """The compiled research graph (built once per process, on the first call)."""
    return _compiled()
