"""The embedded default model: packaged SmolLM2 GGUF -> converted folder -> vLLM on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.llm.client import OpenAIClient
from agent.llm.types import ChatRequest, Message
from tests.fixtures.vllm_server import VLLM_START_TIMEOUT, require_vllm

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    require_vllm()
    from serving.local_models import MissingExtraError, ensure_smollm2

    try:
        return ensure_smollm2()
    except MissingExtraError as exc:
        pytest.skip(f"packaged SmolLM2 weights unavailable: {exc}")


def test_conversion_is_checksummed_and_reused(smollm2_dir: Path) -> None:
    from serving.local_models import CHECKSUM_FILE, ensure_smollm2, verify_checksums

    record = json.loads((smollm2_dir / CHECKSUM_FILE).read_text())
    assert record["source"]["gguf"].endswith(".gguf")
    assert smollm2_dir.name.endswith(record["source"]["gguf_sha256"][:12])
    assert set(record["weights"]) == {"model.safetensors"}
    assert (smollm2_dir / "config.json").is_file()
    assert (smollm2_dir / "tokenizer.json").is_file()
    assert verify_checksums(smollm2_dir)
    assert ensure_smollm2() == smollm2_dir  # second call reuses the verified folder


async def test_local_profile_answers_a_trivial_question(smollm2_dir: Path, tmp_path: Path) -> None:
    from serving.profiles import get_profile
    from serving.vllm_launcher import VLLMServer

    profile = get_profile("local")
    server = VLLMServer(profile, log_path=tmp_path / "vllm.log")
    try:
        base_url = server.start(timeout=VLLM_START_TIMEOUT)
        async with OpenAIClient(base_url) as client:
            assert await client.list_models() == [profile.served_model_name]
            result = await client.chat(
                ChatRequest(
                    (Message("user", "What is the capital of France?"),),
                    max_tokens=48,
                    temperature=0.0,
                )
            )
    finally:
        server.stop()
    assert "paris" in result.content.lower(), result.content
    assert result.reasoning == ""
    assert result.finish_reason in ("stop", "length")
