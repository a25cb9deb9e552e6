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


def test_every_mcp_tool_and_argument_is_documented(tmp_path: Path) -> None:
    import anyio

    from service.shell.mcp_server import make_server
    from service.shell.state import ServiceState

    tools = anyio.run(make_server(ServiceState(Settings(store_dir=tmp_path))).list_tools)
    api = (ROOT / "docs" / "api.md").read_text()
    section = api[api.index("## MCP"):api.index("## CLI")]
    for tool in tools:
        assert f"| `{tool.name}` |" in section
        row = section[section.index(f"| `{tool.name}` |"):].split("\n", 1)[0]
        for argument in tool.input_schema.get("properties", {}):
            assert f"`{argument}`" in row, (tool.name, argument)
    readme = (ROOT / "README.md").read_text()
    assert '"args": ["mcp"]' in readme and "http://127.0.0.1:8000/mcp" in readme
