"""Helpers for the reliability tests: fault injection (SIGKILL, a Chroma server stopped and restarted),
hostile input and fuzzing. Every process these tests start listens on or talks to 127.0.0.1 only, and
every loop has a bound (trial count, example count, deadline).

* `prose_corpus(folder, n_docs)`: small real-prose .txt files (paragraphs of the licence texts Debian
  ships in /usr/share/common-licenses, through `bench.corpus`), deterministic on a given machine.
* `run_cli(env, *args)`: the `briefing` CLI as a subprocess, with a timeout.
* `ChromaServer`: a `chroma run` on a fixed loopback port and data directory that a test can stop and
  start again on the same port and path.
* `record_figures(name, data)`: writes measured figures to artifacts/reliability/NAME.json (the numbers
  quoted in docs/reliability.md and docs/security.md come from these files).
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import chroma_executable, free_port

PROJECT = Path(__file__).resolve().parents[2]
BRIEFING = str(Path(sys.executable).parent / "briefing")
ARTIFACTS = PROJECT / "artifacts" / "reliability"
CLI_TIMEOUT = 300


def run_cli(
    env: dict[str, str], *args: str, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BRIEFING, *args], env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def store_env(subprocess_env: dict[str, str], store_dir: Path, **extra: str) -> dict[str, str]:
    store_dir.mkdir(parents=True, exist_ok=True)
    return {**subprocess_env, "BRIEFING_STORE_DIR": str(store_dir), "BRIEFING_EMBEDDER": "use-multilingual",
            **extra}


def ingest_report(env: dict[str, str], *args: str) -> dict[str, Any]:
    proc = run_cli(env, "ingest", *args, "--json")
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr[-3000:]}"
    )
    return json.loads(proc.stdout)


def record_figures(name: str, data: Any) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------
# A small corpus of real prose
# ---------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _prose_paragraphs() -> list[str]:
    from bench.corpus import collect

    for sources in (("licenses",), ("licenses", "python")):
        paras = [p for found in collect(sources).values() for p in found]
        if len(paras) >= 50:
            return paras
    pytest.skip("no prose on this machine (/usr/share/common-licenses is missing)")


def _first_sentences(paragraph: str, limit: int) -> str:
    out = ""
    for sentence in _SENTENCE_END.split(paragraph):
        if out and len(out) + len(sentence) + 1 > limit:
            break
        out = f"{out} {sentence}" if out else sentence
    return out


def prose_corpus(folder: Path, n_docs: int, chars: int = 230, edited: set[int] | None = None) -> list[Path]:
    """`n_docs` .txt files of two short prose paragraphs each (two chunks a document).

    `edited` names documents whose second paragraph is replaced, as a later version of the corpus."""
    paras = _prose_paragraphs()
    folder.mkdir(parents=True, exist_ok=True)
    n = len(paras)
    files = []
    for j in range(n_docs):
        first = _first_sentences(paras[j % n], chars)
        second = _first_sentences(paras[(j * 7 + 3) % n], chars)
        if edited and j in edited:
            second = _first_sentences(paras[(j * 11 + 5) % n], chars) + " (Revised.)"
        path = folder / f"note-{j:03d}.txt"
        path.write_text(f"Note {j}. {first}\n\n{second}\n", encoding="utf-8")
        files.append(path)
    return files


# ---------------------------------------------------------------------------------------
# A Chroma server that can be stopped and started again
# ---------------------------------------------------------------------------------------


class ChromaServer:
    """`chroma run --path DATA --host 127.0.0.1 --port PORT`, restartable on the same port and path."""

    def __init__(self, data_dir: Path, env: dict[str, str], port: int | None = None) -> None:
        self.data_dir = data_dir
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"chroma-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait for the heartbeat; returns the seconds it took."""
        import httpx

        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [chroma_executable(), "run", "--path", str(self.data_dir), "--host", "127.0.0.1",
                 "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                start_new_session=True,
            )
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"chroma server exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=2, trust_env=False).status_code == 200:
                    return time.monotonic() - started
            if time.monotonic() - started > timeout:
                pytest.fail(
                    f"chroma server at {self.url} did not answer within {timeout:.0f} s:\n{self.tail()}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# ---------------------------------------------------------------------------------------
# The HTTP service
# ---------------------------------------------------------------------------------------


def service_settings(store_dir: Path, **overrides: Any) -> Any:
    """Settings for a test app, every HTTP field explicit so the machine's BRIEFING_* cannot leak in."""
    from briefing_core.settings import Settings

    values: dict[str, Any] = {
        "store_dir": store_dir, "chroma_url": None, "collection": "briefing", "embedder": "use-multilingual",
        "answerer": "extractive", "api_key": None, "admin_key": None, "cors_origins": [],
        "rate_limit_per_minute": 0, "lock_timeout_s": 10.0,
    }
    values.update(overrides)
    return Settings(**values)


def wait_status(client: Any, path: str, status: int, timeout: float) -> Any:
    """GET `path` until it answers `status`; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = client.get(path)
        if last.status_code == status:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{path} did not answer {status} within {timeout:.0f} s: "
                         f"{last.status_code if last else None} {last.text if last else ''}")
