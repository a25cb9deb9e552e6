"""Load test of the HTTP service on 127.0.0.1: many analysts, distinct questions, memory over time.

The script ingests the bundled briefing into a temporary store (`briefing ingest`), starts the service
as a subprocess exactly as an operator would (`briefing serve --host 127.0.0.1 --port FREE_PORT`, one
worker, default settings and extractive answerer, BRIEFING_RATE_LIMIT_PER_MINUTE=0 so the per-client
rate limit does not turn the load into 429s), waits for GET /readyz to say 200, and drives it with one
`httpx.AsyncClient` (64 keep-alive connections). Every POST /v1/ask carries a question never asked
before in the run, drawn from bench/questions.py (templates over the article's actors, sources and
topics; English with some Chinese and Russian; a few off-topic questions the service should refuse).
Phases, in this order:

    warm-up      a few dozen questions, untimed (first-call costs of a freshly started process)
    analysts     20 concurrent analysts, each asking again 1 s after receiving an answer, 2 minutes;
                 the server's RSS (/proc/PID/status VmRSS) at the start, every 10 s and at the end
    floor        the same 20 analysts against GET /healthz (the framework's floor), 2 minutes
    ramp         closed loops with no pause at concurrency 1, 2, 4, 8, 16, 20 s each, POST /v1/ask
                 and GET /healthz interleaved level by level
    in process   after the server stops: `BriefingQA.ask` in a loop in a fresh process (no HTTP),
                 one thread and four (the service answers in at most four worker threads)

Errors are non-200 responses and transport errors (30 s timeout). Latencies are of the 200s, from
sending the request to having read the whole body, in ms, nearest-rank percentiles. CPU is measured
per phase from /proc: the server process, this load generator, and the rest of the machine ("other",
work that is not ours), in cores.

    .venv/bin/python -m bench.load [--quick] [--write docs/benchmarks.md]
                                   [--quiet-load 1.0 --quiet-wait 1200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: `bench/` must not shadow the `ingest` package
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Load"
COMMAND = ".venv/bin/python -m bench.load --quiet-load 1.0 --quiet-wait 1200 --write docs/benchmarks.md"
ERROR_TARGET_PCT = 1.0
P95_TARGET_MS = 300.0
FLAT_MB_PER_MIN = 0.5  # "memory flat": least-squares RSS slope over the analysts phase at most this
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Plan:
    analysts: int = 20
    think_s: float = 1.0
    steady_s: float = 120.0
    levels: tuple[int, ...] = (1, 2, 4, 8, 16)
    level_s: float = 20.0
    # (threads calling qa.ask, the USE embedder's BLAS threads; None = as the service builds it)
    inproc_levels: tuple[tuple[int, int | None], ...] = ((1, None), (4, None), (1, 1), (4, 1))
    inproc_s: float = 20.0
    sample_s: float = 10.0
    warmup: int = 40
    pool: int = 60_000

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            steady_s=10.0,
            levels=(1, 4, 16),
            level_s=10.0,
            inproc_levels=((1, None), (1, 1)),
            inproc_s=10.0,
            sample_s=2.5,
            warmup=20,
            pool=20_000,
        )


# ---------------------------------------------------------------------------------------
# /proc readers
# ---------------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS (MB) and Threads of a process."""
    out = {"rss_mb": 0.0, "threads": 0.0}
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                out["threads"] = float(line.split()[1])
    return out


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    return 0.0


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all CPUs, everything but idle and iowait)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return (sum(values) - values[3] - values[4]) / CLK_TCK
    return 0.0


def load() -> str:
    with contextlib.suppress(OSError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "unknown"


@dataclass
class Snap:
    t: float
    server: float
    client: float
    busy: float
    load: str

    @classmethod
    def take(cls, server_pid: int | None) -> Snap:
        return cls(
            time.perf_counter(),
            proc_cpu_s(server_pid) if server_pid else 0.0,
            time.process_time(),
            machine_busy_s(),
            load(),
        )


def cpu_between(a: Snap, b: Snap) -> dict[str, float]:
    """Cores used between two snapshots: the server, this process, and everything else."""
    wall = max(b.t - a.t, 1e-9)
    server, client, busy = b.server - a.server, b.client - a.client, b.busy - a.busy
    return {
        "server": server / wall,
        "client": client / wall,
        "other": max(0.0, busy - server - client) / wall,
        "server_s": server,
    }


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (as eval/metrics.py computes it); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 2:
        return math.nan
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return math.nan
    return sum((t - mx) * (v - my) for t, v in points) / sxx * 60


# ---------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def briefing_bin() -> str:
    for candidate in (Path(sys.executable).parent / "briefing", ROOT / ".venv" / "bin" / "briefing"):
        if candidate.exists():
            return str(candidate)
    raise SystemExit("the `briefing` command is not installed next to this Python (.venv/bin/briefing)")


def service_env(store_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIEFING_")}
    env.update(
        BRIEFING_STORE_DIR=str(store_dir), BRIEFING_RATE_LIMIT_PER_MINUTE="0", ANONYMIZED_TELEMETRY="False"
    )
    return env


# `briefing serve` with the USE embedder built with other BLAS threads (the service builds it with 2):
# only for `--embedder-threads`, an experiment; the production code is not changed.
PATCHED_LAUNCHER = (
    "import briefing_core.embeddings as e; e.UseMultilingualEmbeddings.__init__.__defaults__ = ({threads},); "
    "from service.shell.cli import main; main()"
)


class Server:
    """`briefing serve` as a subprocess; its stdout and stderr go to a log file."""

    def __init__(self, store_dir: Path, log_path: Path, embedder_threads: int | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        launcher = [briefing_bin()]
        if embedder_threads is not None:  # the experiment: same CLI, the USE encoder with other BLAS threads
            launcher = [sys.executable, "-c", PATCHED_LAUNCHER.format(threads=embedder_threads)]
        self.command = [*launcher, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=service_env(store_dir),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.pid = self.proc.pid

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        import httpx

        started = time.perf_counter()
        with httpx.Client(base_url=self.url, trust_env=False, timeout=5.0) as client:
            while time.perf_counter() - started < timeout_s:
                if self.proc.poll() is not None:
                    raise SystemExit(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/readyz").status_code == 200:
                        return time.perf_counter() - started
                time.sleep(0.2)
        raise SystemExit(f"the server was not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def log_problems(self) -> dict[str, int]:
        text = ""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
        return {
            "tracebacks": text.count("Traceback (most recent call last)"),
            "error_lines": sum(1 for line in text.splitlines() if line.startswith(("ERROR", "CRITICAL"))),
            "access_lines": sum(1 for line in text.splitlines() if '" 200' in line or 'HTTP/1.1" ' in line),
        }


# ---------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------


class Feed:
    """Questions handed out once each."""

    def __init__(self, questions: list[str]) -> None:
        self._questions = questions
        self._it: Iterator[str] = iter(questions)
        self.used = 0

    def next(self) -> str | None:
        q = next(self._it, None)
        if q is not None:
            self.used += 1
        return q

    def rest(self) -> list[str]:
        return list(self._it)


@dataclass
class Phase:
    name: str
    target: str  # ask | healthz | inprocess
    pattern: str  # analysts | closed
    concurrency: int
    seconds: float = 0.0
    lat: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    refused: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    load_end: str = ""
    exhausted: bool = False
    memory: list[dict[str, float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return len(self.lat)

    @property
    def error_pct(self) -> float:
        return 100 * sum(self.errors.values()) / self.sent if self.sent else math.nan

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else math.nan

    @property
    def cpu_ms_per_ok(self) -> float:
        return 1000 * self.cpu.get("server_s", math.nan) / self.ok if self.ok else math.nan

    def summary(self) -> str:
        return (
            f"{self.name}: {self.sent} sent, {self.ok} ok, errors {dict(self.errors) or 0}, "
            f"{self.rate:.1f}/s, p50 {pct(self.lat, 50):.1f} p95 {pct(self.lat, 95):.1f} "
            f"p99 {pct(self.lat, 99):.1f} max {max(self.lat, default=math.nan):.1f} ms; cores server "
            f"{self.cpu.get('server', 0):.2f} client {self.cpu.get('client', 0):.2f} other "
            f"{self.cpu.get('other', 0):.2f}; load {self.load_end}"
        )


class Monitor:
    """The server's RSS and thread count, sampled every `every` seconds (and on demand)."""

    def __init__(self, pid: int, every: float) -> None:
        self.pid, self.every = pid, every
        self.t0 = time.perf_counter()
        self.samples: list[dict[str, Any]] = []
        self.label = "idle"
        self.answers = 0  # answers served so far (all phases), for MB per 1000 answers

    def sample(self, label: str | None = None) -> dict[str, Any]:
        s = {
            "t": time.perf_counter() - self.t0,
            "label": label or self.label,
            "answers": self.answers,
            **proc_status(self.pid),
        }
        self.samples.append(s)
        return s

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.sample()


async def one_request(client: Any, phase: Phase, feed: Feed, monitor: Monitor) -> bool:
    """One request; False when the question pool is used up."""
    import httpx

    if phase.target == "ask":
        question = feed.next()
        if question is None:
            phase.exhausted = True
            return False
    started = time.perf_counter()
    try:
        if phase.target == "ask":
            response = await client.post("/v1/ask", json={"question": question})
        else:
            response = await client.get("/healthz")
        ms = (time.perf_counter() - started) * 1000
    except httpx.HTTPError as exc:
        phase.sent += 1
        phase.errors[type(exc).__name__] += 1
        return True
    phase.sent += 1
    if response.status_code != 200:
        phase.errors[f"HTTP {response.status_code}"] += 1
        return True
    phase.lat.append(ms)
    if phase.target == "ask":
        monitor.answers += 1
        with contextlib.suppress(ValueError):
            phase.refused += bool(response.json().get("refused"))
    return True


async def run_phase(
    client: Any,
    phase: Phase,
    feed: Feed,
    monitor: Monitor,
    server_pid: int,
    seconds: float,
    think_s: float = 0.0,
    track_memory: bool = False,
) -> Phase:
    monitor.label = phase.name
    if track_memory:
        phase.memory.append(monitor.sample(phase.name))
    before = Snap.take(server_pid)
    deadline = before.t + seconds

    async def analyst(i: int) -> None:
        if think_s:  # arrivals spread over one think time, not all at once
            await asyncio.sleep(i * think_s / phase.concurrency)
        while time.perf_counter() < deadline:
            if not await one_request(client, phase, feed, monitor):
                return
            if think_s:
                await asyncio.sleep(think_s)

    await asyncio.gather(*(analyst(i) for i in range(phase.concurrency)))
    after = Snap.take(server_pid)
    phase.seconds = after.t - before.t
    phase.cpu = cpu_between(before, after)
    phase.load_end = after.load
    if track_memory:
        phase.memory = [s for s in monitor.samples if s["label"] == phase.name]
        phase.memory.append(monitor.sample(phase.name))
    monitor.label = "idle"
    print("  " + phase.summary(), file=sys.stderr, flush=True)
    return phase


async def drive(server: Server, plan: Plan, feed: Feed) -> dict[str, Any]:
    import httpx

    monitor = Monitor(server.pid, plan.sample_s)
    out: dict[str, Any] = {"ready_sample": monitor.sample("ready")}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30.0, trust_env=False) as client:
        watcher = asyncio.create_task(monitor.run())
        try:
            warm = Phase("warm-up", "ask", "closed", 4)
            warm_feed = Feed([q for q in (feed.next() for _ in range(plan.warmup)) if q])
            await run_phase(client, warm, warm_feed, monitor, server.pid, 3600.0)
            out["warmup"] = warm
            steady = Phase("analysts: POST /v1/ask", "ask", "analysts", plan.analysts)
            out["steady_ask"] = await run_phase(
                client, steady, feed, monitor, server.pid, plan.steady_s, plan.think_s, track_memory=True
            )
            floor = Phase("analysts: GET /healthz", "healthz", "analysts", plan.analysts)
            out["steady_health"] = await run_phase(
                client, floor, feed, monitor, server.pid, plan.steady_s, plan.think_s
            )
            ramp: list[tuple[Phase, Phase]] = []
            for c in plan.levels:
                ask = await run_phase(
                    client,
                    Phase(f"closed c={c}: POST /v1/ask", "ask", "closed", c),
                    feed,
                    monitor,
                    server.pid,
                    plan.level_s,
                )
                health = await run_phase(
                    client,
                    Phase(f"closed c={c}: GET /healthz", "healthz", "closed", c),
                    feed,
                    monitor,
                    server.pid,
                    plan.level_s,
                )
                ramp.append((ask, health))
            out["ramp"] = ramp
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    out["end_sample"] = monitor.sample("end")
    out["samples"] = monitor.samples
    return out


def run_async(coro: Any) -> Any:
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    except ImportError:
        return asyncio.run(coro)


# ---------------------------------------------------------------------------------------
# In process (no HTTP): a child process that loads BriefingQA and loops on ask()
# ---------------------------------------------------------------------------------------


def _use_backend(qa: Any) -> Any:
    """The numpy backend of the USE embedder (it holds the BLAS thread count), or None."""
    model = getattr(qa._embedder, "_model", None)
    return getattr(model, "_model", None) if hasattr(model, "threads") else None


def inprocess_child(spec_path: Path) -> int:
    """`BriefingQA.ask` in a loop on 1..n threads, the query embedding timed on its own; run in a fresh
    process by `run_inprocess`. A level with `blas` set runs the USE embedder with that many BLAS
    threads (the service builds it with 2): the experiment behind the report's proposal."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    for key in [k for k in os.environ if k.startswith("BRIEFING_")]:
        del os.environ[key]
    os.environ.update(BRIEFING_STORE_DIR=spec["store"], ANONYMIZED_TELEMETRY="False")
    from service.engine.chain import BriefingQA
    from briefing_core.settings import Settings

    qa = BriefingQA(Settings()).load()
    backend = _use_backend(qa)
    default_blas = getattr(backend, "threads", None)
    embed_ms: list[float] = []
    embed_query = qa._embedder.embed_query

    def timed_embed_query(text: str) -> list[float]:
        started = time.perf_counter()
        try:
            return embed_query(text)
        finally:
            embed_ms.append((time.perf_counter() - started) * 1000)

    qa._embedder.embed_query = timed_embed_query
    questions = iter(spec["questions"])
    lock = threading.Lock()
    for q in [next(questions) for _ in range(spec["warmup"])]:
        qa.ask(q)
    results = []
    for threads, blas in spec["levels"]:
        if backend is not None:
            backend.threads = blas or default_blas
        phase: dict[str, Any] = {
            "threads": threads,
            "blas": getattr(backend, "threads", None),
            "blas_default": default_blas,
            "lat": [],
            "errors": {},
            "refused": 0,
            "exhausted": False,
        }
        deadline = time.perf_counter() + spec["seconds"]
        embed_ms.clear()

        def worker(phase: dict[str, Any] = phase, deadline: float = deadline) -> None:
            while time.perf_counter() < deadline:
                with lock:
                    q = next(questions, None)
                if q is None:
                    phase["exhausted"] = True
                    return
                started = time.perf_counter()
                try:
                    result = qa.ask(q)
                except Exception as exc:  # counted, not raised: the loop goes on
                    with lock:
                        name = type(exc).__name__
                        phase["errors"][name] = phase["errors"].get(name, 0) + 1
                    continue
                ms = (time.perf_counter() - started) * 1000
                with lock:
                    phase["lat"].append(ms)
                    phase["refused"] += bool(result.refused)

        cpu0, busy0, t0 = time.process_time(), machine_busy_s(), time.perf_counter()
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        wall = time.perf_counter() - t0
        own, busy = time.process_time() - cpu0, machine_busy_s() - busy0
        phase.update(
            seconds=wall,
            cpu={"server": own / wall, "client": 0.0, "other": max(0.0, busy - own) / wall, "server_s": own},
            load_end=load(),
            rss_mb=proc_status(os.getpid())["rss_mb"],
            embed_ms=list(embed_ms),
        )
        results.append(phase)
    print(json.dumps(results))
    return 0


def run_inprocess(store_dir: Path, plan: Plan, feed: Feed, workdir: Path) -> list[Phase]:
    spec = {
        "store": str(store_dir),
        "levels": [list(level) for level in plan.inproc_levels],
        "seconds": plan.inproc_s,
        "warmup": plan.warmup,
        "questions": feed.rest(),
    }
    spec_path = workdir / "inprocess.json"
    spec_path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIEFING_")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.load", "--inprocess-child", str(spec_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the in-process run failed:\n{proc.stderr[-3000:]}")
    phases = []
    for r in json.loads(proc.stdout.strip().splitlines()[-1]):
        blas = "" if r["blas"] == r["blas_default"] else f", embedder BLAS threads {r['blas']}"
        phase = Phase(
            f"in process, {r['threads']} thread(s){blas}: qa.ask",
            "inprocess",
            "closed",
            r["threads"],
            seconds=r["seconds"],
            lat=r["lat"],
            errors=Counter(r["errors"]),
            sent=len(r["lat"]) + sum(r["errors"].values()),
            refused=r["refused"],
            cpu=r["cpu"],
            load_end=r["load_end"],
            exhausted=r["exhausted"],
        )
        phase.memory = [{"rss_mb": r["rss_mb"]}]
        phase.extra = {"blas": r["blas"], "blas_default": r["blas_default"], "embed_ms": r["embed_ms"]}
        print(
            f"  {phase.summary()}; query embedding p50 {pct(r['embed_ms'], 50):.1f} ms",
            file=sys.stderr,
            flush=True,
        )
        phases.append(phase)
    return phases


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def _ms(v: float) -> str:
    return "—" if math.isnan(v) else (f"{v:.0f}" if v >= 100 else f"{v:.1f}")


def _errors(p: Phase) -> str:
    n = sum(p.errors.values())
    if not n:
        return "0"
    kinds = ", ".join(f"{k} ×{v}" for k, v in p.errors.most_common(3))
    return f"{n} ({kinds})"


def memory_summary(steady: Phase, result: dict[str, Any]) -> dict[str, float]:
    mem = steady.memory
    t0 = mem[0]["t"]
    points = [(s["t"] - t0, s["rss_mb"]) for s in mem]
    half = [p for p in points if p[0] >= points[-1][0] / 2]
    end, last = mem[-1], result["end_sample"]
    more = last["answers"] - end["answers"]
    return {
        "start": mem[0]["rss_mb"],
        "end": end["rss_mb"],
        "max": max(s["rss_mb"] for s in mem),
        "min": min(s["rss_mb"] for s in mem),
        "slope": slope_per_min(points),
        "slope_half": slope_per_min(half),
        "threads_start": mem[0]["threads"],
        "threads_end": end["threads"],
        "ready": result["ready_sample"]["rss_mb"],
        "run_end": last["rss_mb"],
        "more_answers": more,
        "per_1000": (last["rss_mb"] - end["rss_mb"]) / more * 1000 if more else math.nan,
        "threads_run_end": last["threads"],
    }


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def render(info: dict[str, Any], result: dict[str, Any], inproc: list[Phase], plan: Plan) -> str:
    m, v = info["machine"], info["versions"]
    steady, floor = result["steady_ask"], result["steady_health"]
    ramp: list[tuple[Phase, Phase]] = result["ramp"]
    mem = memory_summary(steady, result)
    ok = lambda good: "met" if good else "**MISSED**"  # noqa: E731
    lines = [
        SECTION,
        "",
        "`briefing serve` (one uvicorn worker, default settings, extractive answerer, access log on) on "
        "127.0.0.1, started by the script on a store made with `briefing ingest` (the bundled briefing), "
        "with **BRIEFING_RATE_LIMIT_PER_MINUTE=0** (the per-client limit is off: all the load comes from "
        "one address). Client: one `httpx.AsyncClient` (64 keep-alive connections, uvloop) in another "
        f"process on the same {m['nproc']} CPUs. Every `POST /v1/ask` carries a question **never asked "
        f"before in the run**: {info['pool_used']:,} distinct questions from `bench/questions.py` "
        "(templates over the article's actors, sources and topics; about 85% English, 8% Chinese, "
        f"7% Russian; ~5% off-topic), the first {plan.warmup} as an untimed warm-up after /readyz. "
        "Latency: request sent → whole body read, of the 200 responses; ms, nearest-rank percentiles. "
        "Errors: non-200 or transport errors (30 s timeout). CPU in cores (of "
        f"{m['nproc']}): the server process, the load generator, and everything else on the machine "
        '("other": work that is not this benchmark\'s).',
        "",
        f"### (a) {plan.analysts} analysts, each asking again {plan.think_s:g} s after the answer, "
        f"{plan.steady_s:g} s",
        "",
        "| Target | Requests | Errors | Error rate | Answers/s | p50 | p95 | p99 | max | Refused "
        "| CPU server | CPU client | CPU other | Load avg at end |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in (steady, floor):
        name = "`POST /v1/ask`" if p.target == "ask" else "`GET /healthz` (floor)"
        refused = f"{100 * p.refused / p.ok:.0f}%" if p.target == "ask" and p.ok else "—"
        lines.append(
            _row(
                [
                    name,
                    f"{p.sent:,}",
                    _errors(p),
                    f"{p.error_pct:.2f}%",
                    f"**{p.rate:.1f}**",
                    _ms(pct(p.lat, 50)),
                    f"**{_ms(pct(p.lat, 95))}**",
                    _ms(pct(p.lat, 99)),
                    _ms(max(p.lat, default=math.nan)),
                    refused,
                    f"{p.cpu['server']:.2f}",
                    f"{p.cpu['client']:.2f}",
                    f"{p.cpu['other']:.2f}",
                    p.load_end,
                ]
            )
        )
    t0 = steady.memory[0]["t"]
    lines += [
        "",
        "The server's memory (VmRSS) and thread count during (a):",
        "",
        _row(["s", *(f"{s['t'] - t0:.0f}" for s in steady.memory)]),
        "|---|" + "---:|" * len(steady.memory),
        _row(["RSS MB", *(f"{s['rss_mb']:.1f}" for s in steady.memory)]),
        _row(["threads", *(f"{s['threads']:.0f}" for s in steady.memory)]),
        "",
        f"### (b) Saturation: closed loops, no pause between requests, {plan.level_s:g} s a level",
        "",
        "| Concurrency | `/v1/ask` answers/s | p50 | p95 | p99 | Errors | CPU server | server CPU ms an "
        "answer | CPU client | CPU other | `/healthz` requests/s | p50 | p95 | server CPU ms a request |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ask, health in ramp:
        lines.append(
            _row(
                [
                    ask.concurrency,
                    f"**{ask.rate:.1f}**",
                    _ms(pct(ask.lat, 50)),
                    _ms(pct(ask.lat, 95)),
                    _ms(pct(ask.lat, 99)),
                    _errors(ask),
                    f"{ask.cpu['server']:.2f}",
                    f"{ask.cpu_ms_per_ok:.1f}",
                    f"{ask.cpu['client']:.2f}",
                    f"{ask.cpu['other']:.2f}",
                    f"{health.rate:,.0f}",
                    _ms(pct(health.lat, 50)),
                    _ms(pct(health.lat, 95)),
                    f"{health.cpu_ms_per_ok:.2f}",
                ]
            )
        )
    lines += [
        "",
        "The same questions answered in process, no HTTP: a fresh process, `BriefingQA(settings).load()`, "
        "then `qa.ask` in a loop on 1 or 4 threads (the service answers in at most 4 worker threads), "
        f"{plan.inproc_s:g} s a row; the query embedding (`embed_query`, the USE encoder) timed on its own. "
        "Rows with other embedder BLAS threads are an experiment (see the notes); the service builds the "
        f"encoder with {next((p.extra['blas_default'] for p in inproc), '?')}.",
        "",
        "| Threads | Embedder BLAS threads | `qa.ask`/s | p50 | p95 | p99 | Errors | CPU cores | CPU ms an "
        "answer | query embedding p50 | p95 | CPU other |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ip in inproc:
        blas = ip.extra["blas"]
        default = " (as served)" if blas == ip.extra["blas_default"] else " (experiment)"
        emb = ip.extra["embed_ms"]
        lines.append(
            _row(
                [
                    ip.concurrency,
                    f"{blas}{default}",
                    f"**{ip.rate:.1f}**",
                    _ms(pct(ip.lat, 50)),
                    _ms(pct(ip.lat, 95)),
                    _ms(pct(ip.lat, 99)),
                    _errors(ip),
                    f"{ip.cpu['server']:.2f}",
                    f"{ip.cpu_ms_per_ok:.1f}",
                    _ms(pct(emb, 50)),
                    _ms(pct(emb, 95)),
                    f"{ip.cpu['other']:.2f}",
                ]
            )
        )
    best = max((a for a, _ in ramp), key=lambda p: p.rate)
    best_health = max((h for _, h in ramp), key=lambda p: p.rate)
    one = next((a for a, _ in ramp if a.concurrency == 1), None)
    served = [ip for ip in inproc if ip.extra["blas"] == ip.extra["blas_default"]]
    ip1 = next((ip for ip in served if ip.concurrency == 1), None)
    p95 = pct(steady.lat, 95)
    lines += [
        "",
        f"* Error rate, {plan.analysts} analysts: **{steady.error_pct:.2f}%** (target < "
        f"{ERROR_TARGET_PCT:g}%): {ok(steady.error_pct < ERROR_TARGET_PCT)}.",
        f"* p95, {plan.analysts} analysts: **{_ms(p95)} ms** (target ≤ {P95_TARGET_MS:.0f} ms): "
        f"{ok(p95 <= P95_TARGET_MS)}.",
        f"* Memory: RSS {mem['start']:.1f} MB at the start of (a), {mem['end']:.1f} MB at its end (min "
        f"{mem['min']:.1f}, max {mem['max']:.1f}); least-squares slope **{mem['slope']:+.2f} MB/min** "
        f"({mem['slope_half']:+.2f} MB/min over the second half); threads {mem['threads_start']:.0f} → "
        f"{mem['threads_end']:.0f}. Flat, taken as a slope of at most {FLAT_MB_PER_MIN:g} MB/min: "
        f"{ok(mem['slope'] <= FLAT_MB_PER_MIN)}. After the rest of the run ({mem['more_answers']:,} more "
        f"distinct answers) RSS was {mem['run_end']:.1f} MB ({mem['per_1000']:+.2f} MB per 1,000 answers, "
        f"{mem['threads_run_end']:.0f} threads); {mem['ready']:.1f} MB when /readyz first said 200.",
        f"* Saturation: **{best.rate:.1f} answers/s** (concurrency {best.concurrency}: p50 "
        f"{_ms(pct(best.lat, 50))} ms, p95 {_ms(pct(best.lat, 95))} ms, the server on "
        f"{best.cpu['server']:.2f} cores). The `/healthz` floor peaks at {best_health.rate:,.0f} requests/s "
        f"(concurrency {best_health.concurrency}; the load generator then uses "
        f"{best_health.cpu['client']:.2f} cores itself).",
    ]
    ramp_asks = [a for a, _ in ramp]
    ramp_ok = sum(a.ok for a in ramp_asks)
    if ramp_ok:
        ramp_cpu = sum(a.cpu.get("server_s", 0.0) for a in ramp_asks)
        lines.append(
            f"* Server CPU an answer over the whole saturation phase (the server's /proc/PID/stat utime + "
            f"stime before and after each level, summed over the levels, over their {ramp_ok:,} answers): "
            f"**{1000 * ramp_cpu / ramp_ok:.1f} ms** ({ramp_cpu:.1f} CPU s)."
        )
    if one and ip1:
        lines.append(
            f"* What HTTP adds, one request at a time: `/v1/ask` p50 {_ms(pct(one.lat, 50))} ms vs "
            f"`qa.ask` in process {_ms(pct(ip1.lat, 50))} ms; server CPU {one.cpu_ms_per_ok:.1f} ms an "
            f"answer vs {ip1.cpu_ms_per_ok:.1f} ms in process; `/healthz` p50 "
            f"{_ms(pct(ramp[0][1].lat, 50))} ms ({ramp[0][1].cpu_ms_per_ok:.2f} server CPU ms a request)."
        )
    if any(p.exhausted for p in [steady, *(a for a, _ in ramp), *inproc]):
        lines.append("* **The question pool ran out** in at least one phase: raise `--pool`.")
    for threads in sorted({ip.concurrency for ip in inproc}):
        base = next((ip for ip in served if ip.concurrency == threads), None)
        for exp in (ip for ip in inproc if ip.concurrency == threads and ip not in served):
            lines.append(
                f"* Experiment, {threads} thread(s) in process: the USE encoder on {exp.extra['blas']} BLAS "
                f"thread(s) instead of {exp.extra['blas_default']}: `qa.ask` p50 {_ms(pct(base.lat, 50))} → "
                f"{_ms(pct(exp.lat, 50))} ms, p95 {_ms(pct(base.lat, 95))} → {_ms(pct(exp.lat, 95))} ms, "
                f"{base.rate:.1f} → {exp.rate:.1f} answers/s, CPU {base.cpu_ms_per_ok:.1f} → "
                f"{exp.cpu_ms_per_ok:.1f} ms an answer; query embedding p50 "
                f"{_ms(pct(base.extra['embed_ms'], 50))} → {_ms(pct(exp.extra['embed_ms'], 50))} ms."
                if base
                else f"* Experiment: {exp.name}: {exp.rate:.1f} answers/s."
            )
    if info.get("embedder_threads") is not None:
        lines.append(
            "* **Experiment run**: the server was started with the USE encoder on "
            f"{info['embedder_threads']} BLAS thread(s) (`--embedder-threads`), not as the service builds it."
        )
    lines += [f"* {note}" for note in info.get("notes", [])]
    problems = info["log_problems"]
    first = float(info["load_before"].split()[0]) if info["load_before"] != "unknown" else math.nan
    if first < info["quiet_load"]:
        quiet = f"under {info['quiet_load']:g} after waiting {info['waited_s']:.0f} s"
    else:
        quiet = (
            f"no quiet window: the 1-minute figure stayed at or above {info['quiet_load']:g} for the "
            f"{info['waited_s']:.0f} s the run waited, and it ran anyway"
        )
    lines += [
        f"* Server log: {problems['tracebacks']} tracebacks, {problems['error_lines']} ERROR lines. Ready "
        f"{info['ready_s']:.1f} s after start; exit code {info['exit_code']} after SIGINT.",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, {m['os']}. Load average (1, 5, 15 min): "
        f"{info['load_before']} at the start ({quiet}), {info['load_after']} at the end; at the end of each "
        'phase in the tables (this benchmark\'s own server and client count in it; "CPU other" does not).',
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"Run {info['date']}, {info['elapsed_min']:.1f} min in all. Reproduce from the project root:",
        "",
        "```",
        COMMAND.replace("bench.load", "bench.load --quick") if info["quick"] else COMMAND,
        "```",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------


def wait_for_quiet(max_load: float, max_wait_s: float) -> float:
    started = time.monotonic()
    while max_wait_s > 0 and os.getloadavg()[0] >= max_load and time.monotonic() - started < max_wait_s:
        time.sleep(10)
    return time.monotonic() - started


def versions() -> dict[str, str]:
    from bench.common import versions as common_versions

    return common_versions(("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "httpx"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short phases (10 s) for a smoke run")
    parser.add_argument("--write", type=Path, help="write/replace the '## Load' section of this file")
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=1.0,
        help="first wait (up to --quiet-wait s) for the 1-minute load average to fall under this",
    )
    parser.add_argument("--quiet-wait", type=float, default=0.0)
    parser.add_argument(
        "--pool", type=int, help="distinct questions to generate (default 60000; quick 20000)"
    )
    parser.add_argument("--seed", type=int, default=7, help="question generator seed")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (store, server log)")
    parser.add_argument(
        "--embedder-threads",
        type=int,
        help="experiment: serve with the USE encoder on this many BLAS threads (not with --write)",
    )
    parser.add_argument("--note", action="append", default=[], help="a line added to the report's notes")
    parser.add_argument("--inprocess-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inprocess_child:
        return inprocess_child(args.inprocess_child)
    if args.embedder_threads is not None and args.write:
        parser.error("--embedder-threads is an experiment; its numbers are not written to the benchmarks")

    from bench.common import machine
    from bench.questions import questions

    plan = Plan.quick() if args.quick else Plan()
    if args.pool:
        plan.pool = args.pool
    waited = wait_for_quiet(args.quiet_load, args.quiet_wait)
    began = time.perf_counter()
    info: dict[str, Any] = {
        "machine": machine(),
        "versions": versions(),
        "load_before": load(),
        "waited_s": waited,
        "quiet_load": args.quiet_load,
        "quick": args.quick,
        "embedder_threads": args.embedder_threads,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "notes": args.note,
    }
    print(f"load average {info['load_before']} (waited {waited:.0f} s)", file=sys.stderr, flush=True)
    pool = questions(plan.pool, args.seed)
    feed = Feed(pool)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench-load-"))
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / "store"
    try:
        started = time.perf_counter()
        ingest = subprocess.run(
            [briefing_bin(), "ingest"],
            cwd=ROOT,
            env=service_env(store),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if ingest.returncode != 0:
            raise SystemExit(f"briefing ingest failed:\n{ingest.stdout}\n{ingest.stderr}")
        print(f"ingest: {ingest.stdout.strip()} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
        server = Server(store, workdir / "server.log", args.embedder_threads)
        try:
            info["ready_s"] = server.wait_ready()
            print(
                f"server pid {server.pid} on {server.url}, ready in {info['ready_s']:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            result = run_async(drive(server, plan, feed))
        finally:
            info["exit_code"] = server.stop()
            info["log_problems"] = server.log_problems()
        inproc = run_inprocess(store, plan, feed, workdir)
        info["pool_used"] = feed.used + sum(p.sent for p in inproc) + min(plan.warmup, 40)
        info["load_after"] = load()
        info["elapsed_min"] = (time.perf_counter() - began) / 60
        section = render(info, result, inproc, plan)
        print(section)
        if args.write:
            from bench.common import write_section

            write_section(args.write, section, SECTION)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
