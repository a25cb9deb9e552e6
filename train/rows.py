"""Harvested rows, cached on disk by corpus and by the code that makes them: a change to how
candidates are found or features are computed harvests again; anything else reuses the rows."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from train.data import Corpus
from train.harvest import Rows, harvest

# The code that decides what a row holds: whole modules, and the one method of the planner (which
# otherwise decides answers, not rows) that finds candidates.
_SOURCES = (
    "service/engine/signals.py",
    "service/engine/cues.py",
    "service/engine/units.py",
    "service/engine/salience.py",
    "service/engine/analysis.py",
    "service/engine/retrieval.py",
    "service/engine/guard.py",
    "briefing_core/text.py",
    "briefing_core/embeddings.py",
    "ingest/chunking.py",
    "train/data.py",
    "train/harvest.py",
    "train/corpora.py",
)


def code_version(root: Path) -> str:
    import inspect

    from service.engine.plan import Planner

    digest = hashlib.sha256()
    for name in _SOURCES:
        path = root / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"-")
    digest.update(inspect.getsource(Planner.candidates).encode())
    return digest.hexdigest()[:12]


def cached_rows(
    name: str, build: Callable[[], Corpus], cache: Path, root: Path, seed: int, log: Any = print
) -> Rows:
    path = cache / f"{name}-{code_version(root)}-s{seed}.npz"
    if path.is_file():
        return Rows.load(path)
    rows = harvest(build(), seed=seed, log=log)
    rows.save(path)
    return rows
