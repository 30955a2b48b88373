"""thinkrag as an MCP server: `search`, `open_passage` and `research` over stdio
(`thinkrag mcp`) and streamable HTTP (`/mcp` in `thinkrag serve`)."""
