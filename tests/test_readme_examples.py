"""Run the README's service examples against a live server.

A fenced block is tested when the line just before its opening fence is
`<!-- test: service -->`. Blocks are `bash` (run with bash; curl is expected) or
`python` (run with this interpreter). Examples talk to `http://127.0.0.1:8080`; the test
rewrites that to the live server, which answers with a scripted model over a tiny corpus
about Freedonia, so examples should ask about Freedonia's capital.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_service_support import ModelFactory, ThreadServer, research_turn, service_settings

README = Path(__file__).resolve().parents[1] / "README.md"
TAG = "<!-- test: service -->"
DOC_URL = "http://127.0.0.1:8080"
_BLOCK = re.compile(r"^" + re.escape(TAG) + r"\s*\n```(\w+)\n(.*?)^```", re.M | re.S)


def tagged_blocks() -> list[tuple[str, str]]:
    if not README.is_file():
        return []
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(README.read_text("utf-8"))]


BLOCKS = tagged_blocks()


@pytest.mark.skipif(not BLOCKS, reason=f"README.md has no blocks tagged {TAG!r} yet")
@pytest.mark.parametrize(("lang", "code"), BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(
    lang: str, code: str, tmp_path: Path, scripted_model: ModelFactory
) -> None:
    model = scripted_model(research_turn)
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        code = code.replace(DOC_URL, server.url)
        if lang in ("bash", "sh", "shell", "console"):
            if shutil.which("curl") is None:
                pytest.skip("curl is not installed, and the bash examples use it")
            cmd = ["bash", "-euo", "pipefail", "-c", code]
        elif lang == "python":
            cmd = [sys.executable, "-c", code]
        else:
            pytest.fail(f"tagged block has language {lang!r}; tag only bash or python blocks")
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, f"example failed:\n{code}\n--- stderr ---\n{done.stderr}"
    assert "Sylvania City" in done.stdout, f"example printed no answer:\n{done.stdout}"
