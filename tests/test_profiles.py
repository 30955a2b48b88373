"""Model profiles render the vLLM commands and agent settings each model family needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from serving.models.profiles import PROFILES, UnknownProfileError, get_profile

PRODUCTION_PARSERS = {
    "qwen3-30b-a3b": ("qwen3", "hermes"),
    "qwen3-235b-a22b": ("qwen3", "hermes"),
    "deepseek-r1-0528": ("deepseek_r1", "deepseek_v3"),
    "gpt-oss-20b": ("openai_gptoss", "openai"),
    "gpt-oss-120b": ("openai_gptoss", "openai"),
}


def flag_value(argv: list[str], flag: str) -> str:
    assert flag in argv, f"{flag} missing from {argv}"
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize("name", sorted(PRODUCTION_PARSERS))
def test_production_profile_renders_gpu_command_with_its_parsers(name: str) -> None:
    profile = get_profile(name)
    argv = profile.serve_command(port=8123, host="0.0.0.0")
    reasoning, tools = PRODUCTION_PARSERS[name]
    assert argv[:3] == ["vllm", "serve", profile.model]
    assert flag_value(argv, "--reasoning-parser") == reasoning
    assert flag_value(argv, "--tool-call-parser") == tools
    assert "--enable-auto-tool-choice" in argv
    assert flag_value(argv, "--port") == "8123"
    assert flag_value(argv, "--host") == "0.0.0.0"
    assert flag_value(argv, "--served-model-name") == profile.served_model_name
    assert "--enable-prefix-caching" in argv  # agent loops re-send a growing prefix
    assert not profile.is_local
    # The copy-paste line carries the same argv.
    assert profile.shell_command(port=8123).startswith("vllm serve ")


def test_large_models_are_sharded_across_gpus() -> None:
    assert (
        flag_value(get_profile("qwen3-235b-a22b").serve_command(), "--tensor-parallel-size") == "8"
    )
    assert (
        flag_value(get_profile("deepseek-r1-0528").serve_command(), "--tensor-parallel-size") == "8"
    )
    assert "--tensor-parallel-size" not in get_profile("gpt-oss-20b").serve_command()


def test_deepseek_r1_uses_the_tool_template_and_defaults_to_json_actions() -> None:
    profile = get_profile("deepseek-r1-0528")
    argv = profile.serve_command()
    assert flag_value(argv, "--chat-template").endswith("tool_chat_template_deepseekr1.jinja")
    assert profile.protocol == "json"
    assert "tool" in profile.notes


def test_gpt_oss_does_not_claim_template_kwargs_or_thinking_budget() -> None:
    for name in ("gpt-oss-20b", "gpt-oss-120b"):
        profile = get_profile(name)
        assert not profile.supports_chat_template_kwargs
        assert not profile.supports_thinking_budget
        assert profile.protocol == "tools"


def test_unknown_profile_error_lists_the_known_names() -> None:
    with pytest.raises(UnknownProfileError) as info:
        get_profile("qwen4-huge")
    message = str(info.value)
    assert "qwen4-huge" in message
    for name in PROFILES:
        assert name in message
    assert isinstance(info.value, KeyError)


def test_profiles_are_frozen() -> None:
    profile = get_profile("local")
    with pytest.raises(ValidationError):
        profile.temperature = 1.5


def test_local_profile_runs_the_api_server_module_with_cpu_flags(tmp_path: Path) -> None:
    from serving.models.cpu import preferred_dtype

    profile = get_profile("local")
    argv = profile.serve_command(port=9001, model_path=tmp_path)
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert flag_value(argv, "--model") == str(tmp_path)
    assert flag_value(argv, "--host") == "127.0.0.1"
    assert flag_value(argv, "--dtype") == preferred_dtype()  # float32 on AVX2-only CPUs
    assert "--enforce-eager" in argv
    assert int(flag_value(argv, "--kv-cache-memory-bytes")) > 0
    assert "--enable-prefix-caching" in argv
    assert flag_value(argv, "--tool-call-parser") == "hermes"
    assert flag_value(argv, "--tool-strict-level") == "parameter"
    # Qwen2.5 has no think tokens: the text-based parser ships as a vLLM plugin file.
    assert flag_value(argv, "--reasoning-parser") == "think_tags"
    plugin = Path(flag_value(argv, "--reasoning-parser-plugin"))
    assert plugin.is_file() and "register_module" in plugin.read_text()
    template = Path(flag_value(argv, "--chat-template")).read_text()
    assert "tool_call" in template and "<think>" in template
    config = json.loads(flag_value(argv, "--structured-outputs-config"))
    assert config == {"backend": "xgrammar", "disable_any_whitespace": True}
    assert profile.env["HF_HUB_OFFLINE"] == "1"
    assert profile.env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert profile.protocol == "tools" and profile.tool_choice == "required"


def test_tiny_profile_keeps_smollm2_on_json(tmp_path: Path) -> None:
    profile = get_profile("tiny")
    argv = profile.serve_command(model_path=tmp_path)
    assert "--reasoning-parser" not in argv  # SmolLM2 does not think
    assert profile.local_model == "smollm2" and profile.protocol == "json"


def test_local_agent_settings_come_from_the_profile() -> None:
    from serving.models.agent_config import agent_config_for

    config = agent_config_for(get_profile("local"))
    assert config.tool_choice == "required" and config.retrieval_first
    assert config.top_k == 3 and config.observation_token_budget == 600
    assert not config.multihop_first
    assert "think" in config.prompts["persona"]
    assert config.thinking_tokens_per_step == get_profile("local").thinking_budget


def test_tiny_moe_profile_has_the_qwen3_parsers() -> None:
    profile = get_profile("tiny-moe")
    argv = profile.serve_command(model_path="/models/tiny")
    assert flag_value(argv, "--reasoning-parser") == "qwen3"
    assert flag_value(argv, "--tool-call-parser") == "hermes"
    assert flag_value(argv, "--tool-strict-level") == "parameter"
    assert "--chat-template" not in argv  # the template ships inside the built tokenizer
    assert profile.local_model == "tiny-moe" and profile.is_local


def test_model_serve_prints_the_gpu_command_instead_of_running_it() -> None:
    from typer.testing import CliRunner

    from serving.cli import app

    result = CliRunner().invoke(app, ["model", "serve", "--profile", "qwen3-30b-a3b"])
    assert result.exit_code == 0, result.output
    assert "GPU profile" in result.output
    assert "vllm serve Qwen/Qwen3-30B-A3B" in result.output
    assert "--reasoning-parser qwen3" in result.output


def test_model_serve_rejects_unknown_profiles() -> None:
    from typer.testing import CliRunner

    from serving.cli import app

    result = CliRunner().invoke(app, ["model", "serve", "--profile", "nope"])
    assert result.exit_code == 2
    assert "known profiles" in result.output
