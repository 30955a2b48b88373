"""A scripted model server that speaks vLLM's OpenAI wire protocol over real HTTP."""

from testing.scripted.script import Script, ScriptedTurn, ScriptExhaustedError, ScriptRequest
from testing.scripted.server import ScriptedModelServer

__all__ = ["Script", "ScriptExhaustedError", "ScriptRequest", "ScriptedModelServer", "ScriptedTurn"]
