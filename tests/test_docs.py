"""The docs name every setting, and the package's public entry points exist as documented."""

from __future__ import annotations

from pathlib import Path

from briefing_core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"`BRIEFING_{name.upper()}`" not in text]
    assert missing == []


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("serve", "test", "setup", "eval"):
        assert f"make {target}" in readme
        assert f"\n{target}:" in makefile
    # The recipes the Makefile runs, which CI and `bash .ci/...` users call too.
    for script in ("bash .ci/serve", "bash .ci/test", "bash .ci/setup"):
        assert script in makefile
        assert (ROOT / script.split()[1]).is_file()
    # CI runs the README's test command.
    assert "make test PYTEST_ARGS=" in (ROOT / ".ci" / "run").read_text()
