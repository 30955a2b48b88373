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
    from serving.models.local import MissingExtraError, ensure_smollm2

    try:
        return ensure_smollm2()
    except MissingExtraError as exc:
        pytest.skip(f"packaged SmolLM2 weights unavailable: {exc}")


def test_conversion_is_checksummed_and_reused(smollm2_dir: Path) -> None:
    from serving.models.local import CHECKSUM_FILE, ensure_smollm2, verify_checksums

    record = json.loads((smollm2_dir / CHECKSUM_FILE).read_text())
    assert record["source"]["gguf"].endswith(".gguf")
    assert smollm2_dir.name.endswith(record["source"]["gguf_sha256"][:12])
    assert set(record["weights"]) == {"model.safetensors"}
    assert (smollm2_dir / "config.json").is_file()
    assert (smollm2_dir / "tokenizer.json").is_file()
    assert verify_checksums(smollm2_dir)
    assert ensure_smollm2() == smollm2_dir  # second call reuses the verified folder


async def test_local_profile_answers_a_trivial_question(smollm2_dir: Path, tmp_path: Path) -> None:
    from serving.models.launcher import VLLMServer
    from serving.models.profiles import get_profile

    profile = get_profile("tiny")
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


def test_tiny_moe_build_is_deterministic_and_safe_to_race(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="building the tiny MoE needs the [local] extra")
    import subprocess
    import sys

    from serving.models.local import CHECKSUM_FILE, verify_checksums

    argv = [sys.executable, "-m", "serving.models.local", "build-tiny-moe"]
    runs = [
        subprocess.Popen([*argv, "--cache-dir", str(tmp_path / name)], stdout=subprocess.PIPE)
        for name in ("a", "a", "b")  # two racing builders share cache "a"
    ]
    outputs = [run.communicate(timeout=600)[0].decode().strip() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert outputs[0] == outputs[1]
    folders = [Path(out.splitlines()[-1]) for out in outputs]
    assert all(verify_checksums(folder) for folder in folders)
    assert [
        p.name for p in (tmp_path / "a" / "models").iterdir() if not p.name.startswith(".")
    ] == [folders[0].name]
    weights = [json.loads((f / CHECKSUM_FILE).read_text())["weights"] for f in folders]
    assert weights[0] == weights[2]  # same recipe, separate builds: identical bytes
