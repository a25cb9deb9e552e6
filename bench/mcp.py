"""What asking over MCP costs: the `ask` tool over stdio and over streamable HTTP, against POST /v1/ask,
in one run on one store.

The script ingests the bundled briefing into a temporary store (`briefing ingest`), starts
`briefing serve --host 127.0.0.1 --port FREE` on it (one worker, default settings, extractive answerer,
BRIEFING_RATE_LIMIT_PER_MINUTE=0) and `briefing mcp` (stdio, launched by the SDK's client as an MCP
client launches it), and asks the development gold set's questions (eval/gold/dev.jsonl) three ways,
one at a time, from one client process:

    /v1/ask       httpx.AsyncClient, POST /v1/ask, one keep-alive connection
    MCP HTTP      the SDK's Client over streamable HTTP to /mcp (the service's own process), call_tool("ask")
    MCP stdio     the SDK's Client over stdio to `briefing mcp` (a process of its own), call_tool("ask")

Each question is asked once untimed in every mode (first-call costs), then `--rounds` times, the modes
interleaved question by question in rotating order so machine noise falls on all of them alike.
Latency: from sending the request to having the parsed result, in ms, nearest-rank percentiles. The
answers of the three modes are checked to be the same.

    .venv/bin/python -m bench.mcp [--rounds 10] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: `bench/` must not shadow the `ingest` package
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from bench.common import ROOT, machine, versions, write_section  # noqa: E402
from bench.load import Server, briefing_bin, pct, service_env  # noqa: E402

SECTION = "## MCP"
COMMAND = ".venv/bin/python -m bench.mcp --rounds 10 --write docs/benchmarks.md"
GOLD = ROOT / "eval" / "gold" / "dev.jsonl"
MODES = ("/v1/ask", "MCP HTTP", "MCP stdio")


def questions() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"question": r["question"], **({"briefing": r["briefing"]} if r.get("briefing") else {})}
            for r in rows]


async def measure(url: str, env: dict[str, str], asked: list[dict[str, Any]], rounds: int,
                  errlog: Any) -> tuple[dict[str, list[float]], int, dict[str, str]]:
    import httpx
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    launch = StdioServerParameters(command=briefing_bin(), args=["mcp"], env=env)
    async with (
        httpx.AsyncClient(base_url=url, timeout=120) as http,
        Client(f"{url}/mcp") as over_http,
        Client(stdio_client(launch, errlog=errlog), read_timeout_seconds=300) as over_stdio,
    ):
        async def v1(body: dict[str, Any]) -> dict[str, Any]:
            r = await http.post("/v1/ask", json=body)
            r.raise_for_status()
            return r.json()

        async def via(client: Any, body: dict[str, Any]) -> dict[str, Any]:
            result = await client.call_tool("ask", body)
            if result.is_error:
                raise SystemExit(f"ask over MCP failed: {result.content}")
            return result.structured_content

        calls = {
            "/v1/ask": v1,
            "MCP HTTP": lambda body: via(over_http, body),
            "MCP stdio": lambda body: via(over_stdio, body),
        }
        mismatches = 0
        for body in asked:  # warm-up, and the three answers compared
            answers = [await calls[mode](body) for mode in MODES]
            same = [{k: v for k, v in a.items() if k != "latency_ms"} for a in answers]
            mismatches += any(s != same[0] for s in same[1:])
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for r in range(rounds):
            for i, body in enumerate(asked):
                shift = (r + i) % len(MODES)
                for mode in MODES[shift:] + MODES[:shift]:
                    started = time.perf_counter()
                    await calls[mode](body)
                    times[mode].append((time.perf_counter() - started) * 1000)
        protocols = {"MCP HTTP": over_http.protocol_version, "MCP stdio": over_stdio.protocol_version}
        return times, mismatches, protocols


def render(times: dict[str, list[float]], mismatches: int, protocols: dict[str, str], n_questions: int,
           rounds: int, info: dict[str, str], vers: dict[str, str], took_s: float) -> str:
    base = pct(times["/v1/ask"], 50)
    lines = [
        SECTION,
        "",
        f"`{COMMAND}`",
        "",
        f"The {n_questions} questions of the development gold set (eval/gold/dev.jsonl) asked one at a time "
        "of the bundled briefing, three ways from one client process: `POST /v1/ask` (httpx, one keep-alive "
        "connection) and the `ask` tool through the MCP SDK's own client, over streamable HTTP to `/mcp` of "
        "the same `briefing serve` (one worker, default settings, extractive answerer) and over stdio to "
        "`briefing mcp` (a process of its own, launched by the client). Each question once untimed in every "
        f"mode, then {rounds} rounds, the modes interleaved question by question in rotating order; request "
        "sent to result parsed, milliseconds, nearest-rank percentiles.",
        "",
        "| mode | calls | p50 | p95 | mean | p50 over /v1/ask | p95 over /v1/ask |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base95 = pct(times["/v1/ask"], 95)
    for mode in MODES:
        values = times[mode]
        p50, p95 = pct(values, 50), pct(values, 95)
        over = ("—", "—") if mode == "/v1/ask" else (f"{p50 - base:+.1f}", f"{p95 - base95:+.1f}")
        lines.append(f"| {mode} | {len(values)} | {p50:.1f} | {p95:.1f} | {statistics.fmean(values):.1f} | "
                     f"{over[0]} | {over[1]} |")
    lines += [
        "",
        "The answers and citations of the three modes were the same for every question"
        + ("." if not mismatches else f" but {mismatches}: THEY DIFFERED.")
        + " MCP protocol version the client and server agreed: "
        + ", ".join(f"{mode} {version}" for mode, version in protocols.items()) + ".",
        "",
        f"Machine: {info['nproc']} CPUs, {info['cpu']}, {info['ram']}, {info['os']}; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end (the machine is shared). "
        f"Run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; took {took_s:.0f} s.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--write", type=Path,
                        help="Replace the MCP section of this file (docs/benchmarks.md).")
    args = parser.parse_args(argv)

    import anyio

    started = time.perf_counter()
    asked = questions()
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as tmp:
        store = Path(tmp) / "store"
        env = service_env(store)
        subprocess.run([briefing_bin(), "ingest", "--json"], env=env, check=True, stdout=subprocess.DEVNULL,
                       cwd=ROOT)
        server = Server(store, Path(tmp) / "serve.log")
        try:
            server.wait_ready()
            with (Path(tmp) / "mcp-stdio.log").open("w") as errlog:
                times, mismatches, protocols = anyio.run(measure, server.url, env, asked, args.rounds, errlog)
        finally:
            server.stop()
    section = render(times, mismatches, protocols, len(asked), args.rounds, machine(), versions(("mcp",)),
                     time.perf_counter() - started)
    print(section)
    if args.write:
        write_section(args.write, section, SECTION)
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
