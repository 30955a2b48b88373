"""Start and stop a vLLM OpenAI server for a profile, as a child process we fully own.

The server runs in its own process group so stopping it also stops anything it spawned;
an atexit hook stops servers the caller forgot, so a crashed test run leaves no orphans.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

from serving.models.local import LOCAL_EXTRA_HINT, ensure_smollm2, ensure_tiny_moe
from serving.models.profiles import ModelProfile
from serving.settings import inherited_environment

_LIVE: weakref.WeakSet[VLLMServer] = weakref.WeakSet()


class LaunchError(RuntimeError):
    """vLLM could not be started (missing extra, early exit, or no answer in time)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def resolve_model_path(profile: ModelProfile, cache_dir: Path | None = None) -> str:
    """The folder or hub id vLLM loads; local models are built into the cache first."""
    if profile.local_model == "qwen-coder-1.5b":
        from serving.models.qwen_coder import QWEN_CODER_1_5B, ensure_packaged

        return str(ensure_packaged(QWEN_CODER_1_5B, cache_dir))
    if profile.local_model == "smollm2":
        return str(ensure_smollm2(cache_dir))
    if profile.local_model == "tiny-moe":
        return str(ensure_tiny_moe(cache_dir))
    return profile.model


class VLLMServer:
    """One vLLM server process for `profile` on loopback.

    `start()` blocks until `/v1/models` answers; `stop()` sends SIGTERM to the process group
    and SIGKILL after a grace period. Usable as a context manager. `cache_dir` is where
    local models are built (`Settings.cache_root`); `base_env` is the child's environment
    before the profile's variables are added (default: `inherited_environment()`, a copy
    the settings module takes of ours, since vLLM needs PATH, HOME and the operator's
    VLLM_* variables).
    """

    def __init__(
        self,
        profile: ModelProfile,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | str | None = None,
        extra_args: tuple[str, ...] = (),
        cache_dir: Path | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.profile = profile
        self.cache_dir = cache_dir
        self._base_env = dict(base_env) if base_env is not None else None
        self.host = host
        self.port = port or free_port(host)
        self.extra_args = extra_args
        self._log_path = Path(log_path) if log_path else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_handle: object | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def command(self, model_path: str) -> list[str]:
        argv = self.profile.serve_command(self.port, self.host, model_path=model_path)
        return [*argv, *self.extra_args]

    def start(self, timeout: float = 240.0) -> str:
        """Launch vLLM and wait until it serves; returns the base URL (ending in /v1)."""
        if self._proc is not None:
            return self.base_url
        if not self.profile.is_local:
            raise LaunchError(
                f"profile {self.profile.name!r} is a GPU profile; run its command on a GPU "
                f"host: {self.profile.shell_command()}"
            )
        if not vllm_available():
            raise LaunchError(f"vLLM is not installed: run {LOCAL_EXTRA_HINT}")
        argv = self.command(resolve_model_path(self.profile, self.cache_dir))
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"vllm-{self.profile.name}-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        log = self._log_path.open("wb")
        self._log_handle = log
        base = self._base_env if self._base_env is not None else inherited_environment()
        env = {**base, **self.profile.env}
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group: stop() reaches every child
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        _LIVE.add(self)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self.base_url

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        url = f"{self.base_url}/models"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                code = self._proc.poll()
                if code is not None:
                    raise LaunchError(
                        f"vLLM exited with code {code} before serving "
                        f"(profile {self.profile.name!r}); last log lines:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return
                time.sleep(0.5)
        raise LaunchError(
            f"vLLM did not answer {url} within {timeout:.0f} s; raise the timeout on a busy "
            f"machine. Last log lines:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no log)"
        text = self._log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds; idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    _signal_group(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=grace)
            # The group may still hold children that outlived the leader.
            _signal_group(proc.pid, signal.SIGKILL)
        handle, self._log_handle = self._log_handle, None
        if handle is not None:
            handle.close()  # type: ignore[attr-defined]
        _LIVE.discard(self)

    def __enter__(self) -> VLLMServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the launching thread dies.

    atexit does not run when the parent is killed by a signal; this covers that case.
    """
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop(grace=5.0)
