"""CPU time per extractive answer, answerers of different commits side by side on the same questions.

Each commit (or source tree) gets a child process of its own, run by this same Python (.venv) with
PYTHONPATH set to that tree and the tree as working directory, so `import service` and `import ingest`
are that commit's code and nothing else changes (packages, machine, questions). The child:

    1. ingests the bundled briefing into a temporary store with the tree's own `briefing ingest`
       (the load benchmark's store: the briefing alone);
    2. opens it as the service does, `BriefingQA(Settings()).load()`, default settings;
    3. answers the warm-up questions, untimed;
    4. answers the timed questions with `qa.ask(question)`, one at a time on one thread, each timed
       with `time.process_time()` (the process's CPU, all threads: `ask` runs its steps in
       LangChain's worker threads) and `time.perf_counter()`;
    5. answers more new questions through the chain's steps called directly (`_condense`,
       `_retrieve`, `_answer`, `_finish`: what `ask` runs, without the runnables around them), timed
       the same way, then more again under cProfile (which sees only the calling thread, hence the
       direct calls).

The questions are bench/questions.py's (templates over the article's actors, sources and topics;
English with some Chinese and Russian; a few off-topic), distinct, each asked once per process, in
the same order for every tree: as in the load benchmark, every question is new but the process has
answered others before it. The trees take turns round by round (the timed questions in `--rounds`
rounds, the order of trees rotating), so a change in the machine's load falls on all of them alike.

With `--http SECONDS`, each tree is then also served as bench/load.py serves it (`briefing serve` of
that tree on its store, one uvicorn worker, BRIEFING_RATE_LIMIT_PER_MINUTE=0) and POST /v1/ask is
driven in closed loops (`--http-concurrency`, default 2, as the load benchmark's best level), the
servers taking turns in `--rounds` turns; the server's CPU is read from /proc/PID/stat (utime + stime)
before and after each turn and divided by its answers.

    .venv/bin/python -m bench.answer_cpu --commit 3f26ff8 --commit e28d8c0 --commit HEAD \\
        [--http 60] [--questions 300 --rounds 6 --warmup 40 --profile-questions 300]
        [--keep DIR] [--write docs/benchmarks.md]

`--commit REV[=DESCRIPTION]` clones this repository into a temporary directory and checks REV out
there (removed afterwards; the description names it in the table); `--tree LABEL=PATH` uses a source
tree as it is. The report: CPU ms an answer per tree (and over HTTP), the top functions by cumulative
time an answer for each, and for each tree after the first the functions whose cumulative time an
answer grew the most over the tree before it; the full profile tables are printed after the section
(and kept in DIR/report.md with --keep), only the section is written to the docs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

_CHILD = "--child" in sys.argv
if __package__ in (None, "") or _CHILD:
    # A child must import the tree under test, never this checkout: drop this folder and the project
    # root from the path (PYTHONPATH, set by the parent, holds the tree).
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() not in {_here, _here.parent}]
    if not _CHILD:
        sys.path.insert(0, str(_here.parent))

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Answer CPU by commit"
COMMAND = ".venv/bin/python -m bench.answer_cpu {commits} --write docs/benchmarks.md"


# ---------------------------------------------------------------------------------------
# The child: one tree's answerer
# ---------------------------------------------------------------------------------------


def _proto() -> TextIO:
    """The parent's channel: the real stdout, while anything the code under test prints goes to stderr."""
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def child(spec_path: Path) -> int:
    proto = _proto()
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    for key in [k for k in os.environ if k.startswith("BRIEFING_")]:
        del os.environ[key]
    os.environ.update(BRIEFING_STORE_DIR=spec["store"], ANONYMIZED_TELEMETRY="False")
    import cProfile

    import service

    if (Path(spec["tree"]) / "briefing_core").is_dir():
        from briefing_core.settings import Settings
        from service.engine.chain import BriefingQA
    else:  # a commit from before the packages' one-way layout (briefing_core, service/engine, service/shell)
        from service.chain import BriefingQA  # type: ignore[no-redef]
        from service.settings import Settings  # type: ignore[no-redef]

    tree = str(Path(spec["tree"]).resolve())
    if not str(Path(service.__file__).resolve()).startswith(tree):
        raise SystemExit(f"imported {service.__file__}, not the tree {tree}")
    started = time.perf_counter()
    qa = BriefingQA(Settings()).load()
    load_s = time.perf_counter() - started
    questions: list[str] = spec["questions"]

    def steps(question: str) -> Any:
        state: dict[str, Any] = {"question": question, "history": [], "filters": {}, "answerer": "extractive"}
        state["condensed"] = qa._condense(state)
        state["passages"] = qa._retrieve(state)
        state["draft"] = qa._answer(state)
        return qa._finish(state)

    def timed(fn: Any, batch: list[str]) -> dict[str, Any]:
        cpu, wall, refused = [], [], 0
        for q in batch:
            c0, w0 = time.process_time(), time.perf_counter()
            result = fn(q)
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
            refused += bool(result.refused)
        return {"cpu_ms": cpu, "wall_ms": wall, "refused": refused}

    proto.write(json.dumps({"ready": True, "load_s": load_s, "service": service.__file__}) + "\n")
    for line in sys.stdin:
        command, *args = line.split()
        if command == "quit":
            break
        lo, hi = int(args[0]), int(args[1])
        batch = questions[lo:hi]
        if command == "warm":
            for q in batch:
                qa.ask(q)
            reply: dict[str, Any] = {}
        elif command == "ask":
            reply = timed(qa.ask, batch)
        elif command == "steps":
            reply = timed(steps, batch)
        elif command == "profile":
            profiler = cProfile.Profile(time.process_time)  # CPU time: the machine is shared
            c0 = time.process_time()
            profiler.enable()
            for q in batch:
                steps(q)
            profiler.disable()
            reply = {"cpu_s": time.process_time() - c0, "stats": args[2]}
            profiler.dump_stats(args[2])
        else:
            raise SystemExit(f"unknown command {command!r}")
        proto.write(json.dumps(reply) + "\n")
    return 0


# ---------------------------------------------------------------------------------------
# The parent
# ---------------------------------------------------------------------------------------


@dataclass
class Tree:
    label: str
    path: Path
    commit: str = ""
    subject: str = ""
    temporary: bool = False
    commit_subject: str = ""
    proc: subprocess.Popen[str] | None = None
    load_s: float = 0.0
    ingest_s: float = 0.0
    ask: dict[str, list[float]] = field(default_factory=lambda: {"cpu_ms": [], "wall_ms": []})
    steps: dict[str, list[float]] = field(default_factory=lambda: {"cpu_ms": [], "wall_ms": []})
    refused: int = 0
    profile_path: Path | None = None
    profile_cpu_s: float = 0.0
    store: Path | None = None
    server: subprocess.Popen[bytes] | None = None
    url: str = ""
    http: dict[str, float] = field(
        default_factory=lambda: {
            "answers": 0,
            "errors": 0,
            "server_s": 0.0,
            "seconds": 0.0,
            "client_s": 0.0,
            "other_s": 0.0,
        }
    )
    http_lat: list[float] = field(default_factory=list)
    http_idle_s: float = 0.0

    def send(self, line: str) -> dict[str, Any]:
        assert self.proc and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise SystemExit(f"{self.label}: the child exited ({self.proc.wait()}); see its stderr above")
        return json.loads(reply)


def _briefing(tree: Path) -> list[str]:
    """The tree's own `briefing` command, run by this Python: the console script in .venv/bin names one
    layout's module (service/shell/cli.py since the packages' one-way layout, service/cli.py before),
    so a tree of the other layout is started by its module instead."""
    shell = tree / "service" / "shell" / "cli.py"
    return [sys.executable, "-m", "service.shell.cli" if shell.is_file() else "service.cli"]


def _env(tree: Path, store: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIEFING_")}
    env.update(
        PYTHONPATH=str(tree), ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"
    )
    if store is not None:
        env["BRIEFING_STORE_DIR"] = str(store)
    return env


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def prepare(tree: Tree, work: Path, questions_path: Path) -> None:
    with_commit = tree.commit or _git("rev-parse", "--short", "HEAD", cwd=tree.path)
    tree.commit = with_commit
    tree.commit_subject = _git("log", "-1", "--format=%s", cwd=tree.path)
    tree.subject = tree.subject or tree.commit_subject
    store = tree.store = work / f"store-{tree.label}"
    started = time.perf_counter()
    done = subprocess.run(
        [*_briefing(tree.path), "ingest"],
        cwd=tree.path,
        env=_env(tree.path, store),
        capture_output=True,
        text=True,
        timeout=900,
    )
    tree.ingest_s = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{tree.label}: briefing ingest failed:\n{done.stdout}\n{done.stderr}")
    spec = work / f"spec-{tree.label}.json"
    spec.write_text(
        json.dumps(
            {"store": str(store), "tree": str(tree.path), "questions": json.loads(questions_path.read_text())}
        ),
        encoding="utf-8",
    )
    tree.proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(spec)],
        cwd=tree.path,
        env=_env(tree.path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert tree.proc.stdout
    ready = json.loads(tree.proc.stdout.readline() or "{}")
    if not ready.get("ready"):
        raise SystemExit(f"{tree.label}: the child did not start")
    tree.load_s = ready["load_s"]
    print(
        f"{tree.label} ({tree.commit}): ingest {tree.ingest_s:.1f} s, load {tree.load_s:.1f} s, "
        f"{ready['service']}",
        file=sys.stderr,
        flush=True,
    )


def start_server(tree: Tree, work: Path) -> None:
    """`briefing serve` of the tree (PYTHONPATH, cwd), on its store, the per-client rate limit off, as
    bench/load.py starts it; waits for /readyz."""
    import httpx

    from bench.load import free_port

    port = free_port()
    tree.url = f"http://127.0.0.1:{port}"
    env = _env(tree.path, tree.store)
    env["BRIEFING_RATE_LIMIT_PER_MINUTE"] = "0"
    log = (work / f"server-{tree.label}.log").open("wb")
    tree.server = subprocess.Popen(
        [*_briefing(tree.path), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tree.path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    with httpx.Client(base_url=tree.url, trust_env=False, timeout=5.0) as client:
        while time.monotonic() < deadline:
            if tree.server.poll() is not None:
                raise SystemExit(f"{tree.label}: the server exited; see {log.name}")
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise SystemExit(f"{tree.label}: the server was not ready in 180 s")


def stop_server(tree: Tree) -> None:
    import signal

    if tree.server and tree.server.poll() is None:
        tree.server.send_signal(signal.SIGINT)
        try:
            tree.server.wait(20)
        except subprocess.TimeoutExpired:
            tree.server.kill()
            tree.server.wait(10)


def drive(tree: Tree, questions: list[str], concurrency: int, seconds: float | None) -> dict[str, Any]:
    """Closed loops, no pause: `concurrency` requests in flight, each POST /v1/ask a question of the
    list in order, until the list or `seconds` runs out. The server's CPU from /proc/PID/stat."""
    import asyncio

    import httpx

    from bench.load import machine_busy_s, proc_cpu_s, run_async

    assert tree.server
    feed = iter(questions)
    lat: list[float] = []
    errors = 0

    async def run() -> None:
        nonlocal errors
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(
            base_url=tree.url, limits=limits, timeout=30.0, trust_env=False
        ) as client:
            deadline = time.perf_counter() + seconds if seconds else math.inf

            async def worker() -> None:
                nonlocal errors
                for q in feed:
                    if time.perf_counter() >= deadline:
                        return
                    started = time.perf_counter()
                    try:
                        response = await client.post("/v1/ask", json={"question": q})
                    except httpx.HTTPError:
                        errors += 1
                        continue
                    if response.status_code == 200:
                        lat.append((time.perf_counter() - started) * 1000)
                    else:
                        errors += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    cpu0, client0, busy0, t0 = (
        proc_cpu_s(tree.server.pid),
        time.process_time(),
        machine_busy_s(),
        time.perf_counter(),
    )
    run_async(run())
    wall = time.perf_counter() - t0
    server_s = proc_cpu_s(tree.server.pid) - cpu0
    client_s = time.process_time() - client0
    busy = machine_busy_s() - busy0
    return {
        "answers": len(lat),
        "errors": errors,
        "server_s": server_s,
        "seconds": wall,
        "client_s": client_s,
        "other_s": max(0.0, busy - server_s - client_s),
        "lat": lat,
        "used": len(lat) + errors,
    }


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _where(filename: str, trees: list[Tree]) -> str:
    """A function's file, the same for every tree: relative to its tree, or from site-packages on."""
    for tree in trees:
        root = str(tree.path.resolve())
        if filename.startswith(root + os.sep):
            return filename[len(root) + 1 :]
    for marker in ("site-packages/", "lib/python3"):
        if marker in filename:
            return (
                filename.split(marker, 1)[1]
                if marker == "site-packages/"
                else "python3" + filename.split(marker, 1)[1]
            )
    return filename


def per_answer(tree: Tree, trees: list[Tree], n: int) -> dict[str, tuple[float, float, int]]:
    """(file, function) -> (cumulative ms an answer, own ms an answer, calls an answer x1000) of a
    profile; functions of one name in one file (lambdas, generator expressions) are summed."""
    import pstats

    assert tree.profile_path
    stats = pstats.Stats(str(tree.profile_path))
    out: dict[str, tuple[float, float, int]] = {}
    entries = stats.stats.items()  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, ncalls, tottime, cumtime, _callers) in entries:
        key = f"{_where(filename, trees)}:{name}" if filename != "~" else name
        cum, own, calls = out.get(key, (0.0, 0.0, 0))
        out[key] = (cum + cumtime * 1000 / n, own + tottime * 1000 / n, calls + ncalls)
    return out


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def render(
    trees: list[Tree],
    info: dict[str, Any],
    profiles: dict[str, dict[str, tuple[float, float, int]]],
    top: int,
) -> tuple[str, str]:
    """The benchmarks section, and the full profile report (printed, not written to the docs)."""
    n_ask, n_steps, n_prof = info["questions"], info["steps_questions"], info["profile_questions"]
    lines = [
        SECTION,
        "",
        "CPU time of one extractive answer, the answerers of several commits side by side: each commit in a "
        "process of its own (this `.venv`, `PYTHONPATH` = a clone at that commit), its own `briefing ingest` "
        "of the bundled briefing (the load benchmark's store), `BriefingQA(Settings()).load()`, "
        f"{info['warmup']} untimed warm-up questions, then **{n_ask} distinct questions** from "
        f"`bench/questions.py` (seed {info['seed']}, the same list in the same order for every commit) "
        "asked one at a time on one thread with `qa.ask`, each timed with `time.process_time()` (the "
        "process's CPU, all threads: `ask` runs its steps in LangChain's worker threads). The commits took "
        f"turns in {info['rounds']} rounds, the order rotating. Then {n_steps} more new questions through "
        "the chain's steps called directly (no runnables), and "
        f"{n_prof} more under cProfile with a CPU-time clock (`time.process_time`; steps called directly, as "
        "cProfile sees only its own thread; the profiler's own cost inflates those times, most for "
        "functions called many times).",
        "",
        "| Commit | What it is | CPU ms an answer, mean | p50 | p95 | Wall ms p50 | Refused "
        "| CPU ms, steps without the runnables, mean | cProfile CPU ms an answer |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in trees:
        lines.append(
            _row(
                [
                    f"`{t.commit}`" + (f" ({t.label})" if t.label != t.commit else ""),
                    t.subject[:90] + ("…" if len(t.subject) > 90 else ""),
                    f"**{mean(t.ask['cpu_ms']):.1f}**",
                    f"{pct(t.ask['cpu_ms'], 50):.1f}",
                    f"{pct(t.ask['cpu_ms'], 95):.1f}",
                    f"{pct(t.ask['wall_ms'], 50):.1f}",
                    f"{100 * t.refused / max(1, len(t.ask['cpu_ms'])):.0f}%",
                    f"{mean(t.steps['cpu_ms']):.1f}",
                    f"{1000 * t.profile_cpu_s / n_prof:.1f}" if t.profile_path else "—",
                ]
            )
        )
    lines.append("")
    if info.get("http_s"):
        c = info["http_concurrency"]
        lines += [
            f"Over HTTP: each commit's own `briefing serve` (one uvicorn worker, default settings, "
            "BRIEFING_RATE_LIMIT_PER_MINUTE=0, as bench/load.py starts it) on its store, "
            f"{info['warmup']} untimed questions, then closed loops of {c} requests in flight, no pause, "
            f"{info['http_s']:g} s in all per commit in {info['rounds']} turns, the commits taking turns "
            "(one server driven at a time), every question distinct and the same list for every commit. "
            "Server CPU: /proc/PID/stat utime + stime of the server process before and after each turn, over "
            "its answers.",
            "",
            f"| Commit | `/v1/ask` answers/s (c={c}) | p50 ms | p95 ms | Errors | Server CPU ms an answer | "
            "Server cores | Load generator cores | Other work, cores | Idle server, cores |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for t in trees:
            h = t.http
            secs = max(h["seconds"], 1e-9)
            lines.append(
                _row(
                    [
                        f"`{t.commit}`" + (f" ({t.label})" if t.label != t.commit else ""),
                        f"**{h['answers'] / secs:.1f}**",
                        f"{pct(t.http_lat, 50):.1f}",
                        f"{pct(t.http_lat, 95):.1f}",
                        f"{h['errors']:.0f}",
                        f"**{1000 * h['server_s'] / max(1, h['answers']):.1f}**",
                        f"{h['server_s'] / secs:.2f}",
                        f"{h['client_s'] / secs:.2f}",
                        f"{h['other_s'] / secs:.2f}",
                        f"{t.http_idle_s:.3f}",
                    ]
                )
            )
        lines.append("")
    for before, after in zip(trees, trees[1:], strict=False):
        a, b = profiles.get(before.label), profiles.get(after.label)
        if not a or not b:
            continue
        grown = sorted(
            ((key, b.get(key, (0.0, 0.0, 0))[0] - a.get(key, (0.0, 0.0, 0))[0]) for key in set(a) | set(b)),
            key=lambda kv: -kv[1],
        )
        keep = [(key, d) for key, d in grown if d >= 0.3][:12]
        lines.append(
            f"* Grew the most from `{before.commit}` to `{after.commit}`, cumulative ms an answer under "
            f"cProfile (before → after): "
            + "; ".join(
                f"`{key}` {a.get(key, (0.0,))[0]:.1f} → {b.get(key, (0.0,))[0]:.1f}" for key, d in keep
            )
            + "."
        )
    lines += [f"* {note}" for note in info.get("notes", [])]
    m = info["machine"]
    lines += [
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, {m['os']}, shared with other work (load "
        f"average {info['load_before']} before, {info['load_after']} after); CPU time per answer is less "
        "sensitive to that than wall time, but not immune (caches, the other core's work). Python "
        f"{platform.python_version()}, the same packages for every commit. Run {info['date']}, "
        f"{info['elapsed_min']:.1f} min. Reproduce from the project root:",
        "",
        "```",
        COMMAND.format(
            commits=" ".join(
                f"--commit {t.label}"
                + (f"='{t.subject}'" if t.temporary and t.subject != t.commit_subject else "")
                for t in trees
            )
            + (f" --http {info['http_s']:g}" if info.get("http_s") else "")
        ),
        "```",
        "",
    ]
    report = []
    for t in trees:
        prof = profiles.get(t.label)
        if not prof:
            continue
        report.append(f"### {t.label} ({t.commit}): top {top} by cumulative ms an answer ({n_prof} answers)")
        report.append("| cumulative ms | own ms | calls an answer | function |")
        report.append("|---:|---:|---:|---|")
        for key, (cum, own, calls) in sorted(prof.items(), key=lambda kv: -kv[1][0])[:top]:
            report.append(f"| {cum:.2f} | {own:.2f} | {calls / n_prof:.1f} | `{key}` |")
        report.append(f"### {t.label} ({t.commit}): top {top} by own ms an answer")
        report.append("| own ms | cumulative ms | calls an answer | function |")
        report.append("|---:|---:|---:|---|")
        for key, (cum, own, calls) in sorted(prof.items(), key=lambda kv: -kv[1][1])[:top]:
            report.append(f"| {own:.2f} | {cum:.2f} | {calls / n_prof:.1f} | `{key}` |")
        report.append("")
    for before, after in zip(trees, trees[1:], strict=False):
        a, b = profiles.get(before.label), profiles.get(after.label)
        if not a or not b:
            continue
        report.append(f"### {before.label} → {after.label}: cumulative ms an answer, largest changes")
        report.append(
            "| before | after | change | own before | own after | calls before | calls after | function |"
        )
        report.append("|---:|---:|---:|---:|---:|---:|---:|---|")
        zero = (0.0, 0.0, 0)
        for key in sorted(set(a) | set(b), key=lambda k: -abs(b.get(k, zero)[0] - a.get(k, zero)[0]))[
            : top * 2
        ]:
            x, y = a.get(key, zero), b.get(key, zero)
            report.append(
                f"| {x[0]:.2f} | {y[0]:.2f} | {y[0] - x[0]:+.2f} | {x[1]:.2f} | {y[1]:.2f} "
                f"| {x[2] / n_prof:.1f} | {y[2] / n_prof:.1f} | `{key}` |"
            )
        report.append("")
    return "\n".join(lines), "\n".join(report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--commit",
        action="append",
        default=[],
        help="REV[=DESCRIPTION]: a commit to clone and measure (repeat); the description names it in the "
        "table (default: its subject line)",
    )
    parser.add_argument(
        "--tree", action="append", default=[], help="LABEL=PATH: a source tree as it is (repeat)"
    )
    parser.add_argument("--questions", type=int, default=300, help="timed questions (default 300)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds the timed questions are split into")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--steps-questions", type=int, default=100)
    parser.add_argument("--profile-questions", type=int, default=300, help="0: no profile")
    parser.add_argument(
        "--http",
        type=float,
        default=0.0,
        help="also serve each tree (`briefing serve`) and drive POST /v1/ask for this many seconds in all, "
        "closed loops, in --rounds turns; 0: in process only",
    )
    parser.add_argument("--http-concurrency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--top", type=int, default=30, help="rows of each profile table")
    parser.add_argument("--keep", type=Path, help="work here and keep it (stores, profiles, report.json)")
    parser.add_argument("--write", type=Path, help=f"write/replace the '{SECTION}' section of this file")
    parser.add_argument("--note", action="append", default=[], help="a line added to the section's notes")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child)
    if not args.commit and not args.tree:
        parser.error("name at least one --commit or --tree")

    from bench.common import machine, write_section
    from bench.questions import questions

    began = time.perf_counter()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-answer-cpu-"))
    work.mkdir(parents=True, exist_ok=True)
    trees: list[Tree] = []
    for spec in args.commit:
        rev, _, described = spec.partition("=")
        path = work / f"clone-{rev}"
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["git", "clone", "-q", str(ROOT), str(path)], check=True)
        subprocess.run(["git", "checkout", "-q", _git("rev-parse", rev)], cwd=path, check=True)
        trees.append(Tree(rev, path, _git("rev-parse", "--short", rev), described, temporary=True))
    for spec in args.tree:
        label, _, path = spec.partition("=")
        trees.append(Tree(label, Path(path).resolve()))

    warm, n, n_steps, n_prof = args.warmup, args.questions, args.steps_questions, args.profile_questions
    http_n = int(args.http * 150) if args.http else 0  # more than any tree answers in that time
    pool = questions(warm + n + n_steps + n_prof + warm + http_n, args.seed)
    questions_path = work / "questions.json"
    questions_path.write_text(json.dumps(pool, ensure_ascii=False), encoding="utf-8")
    info: dict[str, Any] = {
        "machine": machine(),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "questions": n,
        "steps_questions": n_steps,
        "profile_questions": n_prof,
        "warmup": warm,
        "rounds": args.rounds,
        "seed": args.seed,
        "notes": args.note,
        "http_s": args.http,
        "http_concurrency": args.http_concurrency,
    }
    try:
        for tree in trees:
            prepare(tree, work, questions_path)
        for tree in trees:
            tree.send(f"warm 0 {warm}")
        bounds = [warm + round(i * n / args.rounds) for i in range(args.rounds + 1)]
        for r, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
            order = trees[r % len(trees) :] + trees[: r % len(trees)]
            for tree in order:
                got = tree.send(f"ask {lo} {hi}")
                tree.ask["cpu_ms"] += got["cpu_ms"]
                tree.ask["wall_ms"] += got["wall_ms"]
                tree.refused += got["refused"]
            print(
                f"round {r + 1}/{args.rounds}: "
                + ", ".join(f"{t.label} {mean(t.ask['cpu_ms']):.1f}" for t in trees)
                + f" CPU ms an answer so far; load {os.getloadavg()[0]:.2f}",
                file=sys.stderr,
                flush=True,
            )
        lo = warm + n
        for tree in trees:
            got = tree.send(f"steps {lo} {lo + n_steps}")
            tree.steps["cpu_ms"], tree.steps["wall_ms"] = got["cpu_ms"], got["wall_ms"]
        profiles: dict[str, dict[str, tuple[float, float, int]]] = {}
        if n_prof:
            lo += n_steps
            for tree in trees:
                tree.profile_path = work / f"profile-{tree.label}.pstats"
                got = tree.send(f"profile {lo} {lo + n_prof} {tree.profile_path}")
                tree.profile_cpu_s = got["cpu_s"]
            for tree in trees:
                profiles[tree.label] = per_answer(tree, trees, n_prof)
        for tree in trees:
            assert tree.proc and tree.proc.stdin
            tree.proc.stdin.write("quit\n")
            tree.proc.stdin.close()
            tree.proc.wait(60)
        if args.http:
            base = warm + n + n_steps + n_prof
            for tree in trees:
                start_server(tree, work)
            for tree in trees:
                drive(tree, pool[base : base + warm], 1, None)  # warm-up, untimed
            from bench.load import proc_cpu_s

            idle0 = {t.label: proc_cpu_s(t.server.pid) for t in trees if t.server}
            idle_t0 = time.perf_counter()
            time.sleep(5)
            for tree in trees:
                if tree.server:
                    tree.http_idle_s = (proc_cpu_s(tree.server.pid) - idle0[tree.label]) / (
                        time.perf_counter() - idle_t0
                    )
            http_pool = pool[base + warm :]
            used = {t.label: 0 for t in trees}
            for r in range(args.rounds):
                order = trees[r % len(trees) :] + trees[: r % len(trees)]
                for tree in order:
                    got = drive(
                        tree, http_pool[used[tree.label] :], args.http_concurrency, args.http / args.rounds
                    )
                    used[tree.label] += got.pop("used")
                    tree.http_lat += got.pop("lat")
                    for key, value in got.items():
                        tree.http[key] += value
                print(
                    f"http round {r + 1}/{args.rounds}: "
                    + ", ".join(
                        f"{t.label} {1000 * t.http['server_s'] / max(1, t.http['answers']):.1f} ms "
                        f"({t.http['answers'] / max(t.http['seconds'], 1e-9):.1f}/s)"
                        for t in trees
                    )
                    + f" server CPU an answer; load {os.getloadavg()[0]:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
            for tree in trees:
                stop_server(tree)
        info["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        info["elapsed_min"] = (time.perf_counter() - began) / 60
        section, report = render(trees, info, profiles, args.top)
        print(section)
        print(report)
        (work / "report.md").write_text(section + "\n\n" + report + "\n", encoding="utf-8")
        (work / "report.json").write_text(
            json.dumps(
                {
                    "info": info,
                    "trees": [
                        {
                            "label": t.label,
                            "commit": t.commit,
                            "subject": t.subject,
                            "ask": t.ask,
                            "steps": t.steps,
                            "refused": t.refused,
                            "profile_cpu_s": t.profile_cpu_s,
                            "http": t.http,
                            "http_lat": t.http_lat,
                            "http_idle_cores": t.http_idle_s,
                        }
                        for t in trees
                    ],
                    "profiles": profiles,
                }
            ),
            encoding="utf-8",
        )
        if args.write:
            write_section(args.write, section, SECTION)
    finally:
        for tree in trees:
            if tree.proc and tree.proc.poll() is None:
                tree.proc.kill()
            stop_server(tree)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            for tree in trees:
                if tree.temporary:
                    shutil.rmtree(tree.path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
