"""A CLI mistake prints one line naming the fix and exits 2, never a traceback.

The table runs the commands through typer's CliRunner (an uncaught exception there is an
exit code 1 with `result.exception` set, so a traceback cannot pass as exit 2); the model
URL cases run the real `thinkrag` entry point in a subprocess and read its stderr.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli import app
from tests.test_service_support import REPO, free_port, write_passages


def thinkrag(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", "from serving.cli import main; main()", *args],
        cwd=REPO,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stderr + proc.stdout


def one_line_error(output: str) -> str:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # The code already composed the fix; it used to surface as a traceback.
        (("model", "check", "http://host:8000"), "pass http://host:8000/v1"),
        (("model", "check", "ftp://host/v1"), "not an http(s) URL"),
        (("model", "serve", "--profile", "nope"), "known profiles"),
        (("ask", "q", "--profile", "nope", "--index", "x"), "known profiles"),
        (("eval", "data.jsonl", "--profile", "nope"), "known profiles"),
        (("ask", "q", "--protocol", "smoke-signals", "--index", "x"), "THINKRAG_PROTOCOL"),
        (("ask", "q", "--index", "no-such-index"), "thinkrag index"),
        (("search", "q", "--index", "no-such-index"), "thinkrag index"),
        (("eval", "missing.jsonl", "--model", "http://127.0.0.1:9/v1"), "eval file not found"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    args: tuple[str, ...], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("THINKRAG_CONFIG", "THINKRAG_MODEL_URL", "THINKRAG_INDEX_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    assert expected in one_line_error(result.stderr)


def test_a_model_url_without_v1_is_a_usage_error_for_ask_and_serve(tmp_path: Path) -> None:
    passages = {"THINKRAG_MEMORY_PASSAGES": str(write_passages(tmp_path / "p.jsonl"))}
    bad = f"http://127.0.0.1:{free_port()}"
    code, output = thinkrag("ask", "q", "--model", bad, cwd=tmp_path, env=passages)
    assert code == 2 and f"pass {bad}/v1" in one_line_error(output)
    code, output = thinkrag(
        "serve", "--model", bad, "--skip-model-check", cwd=tmp_path, env=passages
    )
    assert code == 2 and f"pass {bad}/v1" in one_line_error(output)


def test_a_bad_setting_in_the_environment_is_named(tmp_path: Path) -> None:
    code, output = thinkrag("serve", cwd=tmp_path, env={"THINKRAG_PORT": "eighty"})
    assert code == 2
    assert "THINKRAG_PORT" in one_line_error(output)
