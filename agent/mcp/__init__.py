"""MCP servers' tools as agent tools: configured servers are started once per process
(`hub.McpHub`) and each allowed tool joins the toolbox as `server__tool` (`tool.McpTool`)."""
