"""report.html: the metrics, then every question with its answer and its citations highlighted in
context, failures first, and a latency chart. One self-contained file, no scripts."""

from __future__ import annotations

from html import escape
from typing import Any

from eval.metrics import METRICS, shows_briefings

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d2433}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d5d9e0;padding:.25rem .6rem;text-align:left}
th{background:#f3f5f8}.num{text-align:right;font-variant-numeric:tabular-nums}
.q{border:1px solid #d5d9e0;border-radius:6px;padding:.6rem .9rem;margin:.8rem 0}
.q.fail{border-left:6px solid #c0392b}.q.pass{border-left:6px solid #27ae60}
.tag{display:inline-block;font-size:.75rem;padding:0 .4rem;border-radius:3px;background:#eef1f5;margin-right:.3rem}
.tag.fail{background:#fbe3e0;color:#8c1d12}.tag.pass{background:#e2f5e9;color:#135c2c}
.answer{white-space:pre-wrap;margin:.4rem 0}.ctx{color:#555;font-size:.9rem;margin:.2rem 0 .2rem 1rem}
mark{background:#ffe58a}.bar{display:inline-block;height:.8rem;background:#4a78c2;vertical-align:middle}
.notes{color:#8a5a00;font-size:.85rem}
"""

_CONTEXT = 160


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1.0 else f"{value:.1f}"
    return escape(str(value))


def _metrics_table(groups: list[tuple[str, dict[str, Any]]], anchors: bool = False) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name, _ in groups)
    rows = []
    for metric in (*METRICS, "questions"):
        cells = "".join(f'<td class="num">{_fmt(g.get(metric))}</td>' for _, g in groups)
        label = f'<th id="m-{metric}">{metric}</th>' if anchors else f"<th>{metric}</th>"
        rows.append(f"<tr>{label}{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def _metrics(summary: dict[str, Any]) -> str:
    overall = [("all", summary)] + [(f"lang {k}", v) for k, v in summary.get("by_language", {}).items()]
    by_kind = list(summary.get("by_kind", {}).items())
    kinds = f"<h2>By kind of question</h2>{_metrics_table(by_kind)}" if by_kind else ""
    # Only when questions were scoped: a run across every briefing keeps the layout it always had.
    by_briefing = list(summary.get("by_briefing", {}).items()) if shows_briefings(summary) else []
    briefings = f"<h2 id='by-briefing'>By briefing</h2>{_metrics_table(by_briefing)}" if by_briefing else ""
    return f"<h2>Metrics</h2>{_metrics_table(overall, anchors=True)}{kinds}{briefings}"


def _briefings(summary: dict[str, Any]) -> str:
    """The extra briefings ingested for the run, and the default scope."""
    also = summary.get("also_ingested") or []
    out = f" · also ingested: {', '.join(escape(str(a.get('briefing'))) for a in also)}" if also else ""
    default = summary.get("default_briefing")
    if default:
        out += f" · questions that name no briefing asked within: {escape(str(default))}"
    return out


def _distractors(summary: dict[str, Any]) -> str:
    d = summary.get("distractors")
    if not d:
        return ""
    return (
        f" · distractors: {escape(str(d.get('folder')))} ({_fmt(d.get('chunks'))} chunks, "
        f"{_fmt(len(d.get('errors') or []))} files not ingested)"
    )


def _comparison(summary: dict[str, Any]) -> str:
    comp = summary.get("comparison")
    if not comp:
        return ""
    rows = "".join(
        f"<tr><td>{escape(m)}</td><td class='num'>{_fmt(d['before'])}</td><td class='num'>{_fmt(d['after'])}</td>"
        f"<td class='num'>{d['delta']:+.3f}</td></tr>"
        for m, d in comp["metrics"].items()
    )
    failing = ", ".join(escape(x) for x in comp["newly_failing"]) or "none"
    passing = ", ".join(escape(x) for x in comp["newly_passing"]) or "none"
    return (
        f"<h2>Against {escape(comp['against'])}</h2><table><tr><th>metric</th><th>before</th><th>after</th>"
        f"<th>change</th></tr>{rows}</table><p>Newly failing: {failing}<br>Newly passing: {passing}</p>"
    )


def _judged(summary: dict[str, Any]) -> str:
    judged = summary.get("llm_judged")
    if not judged:
        return ""
    rows = "".join(f"<tr><th>{escape(k)}</th><td class='num'>{_fmt(v)}</td></tr>" for k, v in judged.items())
    return f"<h2>LLM-judged (not part of the contract metrics)</h2><table>{rows}</table>"


def _citation_in_context(citation: dict[str, Any], corpus: dict[str, str]) -> str:
    text = corpus.get(citation.get("doc_id") or "", "")
    start, end = int(citation.get("start") or 0), int(citation.get("end") or 0)
    if not text or not (0 <= start <= end <= len(text)):
        return f"<div class='ctx'>[{citation.get('n')}] {escape(str(citation.get('doc_id')))}: span not in the store</div>"
    before = text[max(0, start - _CONTEXT):start]
    after = text[end:end + _CONTEXT]
    return (
        f"<div class='ctx'>[{citation.get('n')}] <b>{escape(str(citation.get('title') or citation.get('doc_id')))}</b> "
        f"{start}–{end}: …{escape(before)}<mark>{escape(text[start:end])}</mark>{escape(after)}…</div>"
    )


def _question(record: dict[str, Any], corpus: dict[str, str]) -> str:
    checks = record.get("checks", {})
    passed = bool(checks.get("passed"))
    tags = [f"<span class='tag {'pass' if passed else 'fail'}'>{'pass' if passed else 'fail'}</span>"]
    tags += [f"<span class='tag'>{escape(str(record.get(k)))}</span>" for k in ("id", "lang", "kind")]
    if record.get("briefing"):
        tags.append(f"<span class='tag'>briefing: {escape(str(record['briefing']))}</span>")
    if checks.get("citations_outside_briefing"):
        outside = checks["citations_outside_briefing"]
        tags.append(f"<span class='tag fail'>{outside} cited outside the briefing</span>")
    for name in ("correct", "retrieval_hit", "citation_hit", "refused"):
        if name in checks:
            tags.append(f"<span class='tag'>{name}: {'yes' if checks[name] else 'no'}</span>")
    if "evidence_strings" in checks:
        cited = f"{checks['evidence_covered']}/{checks['evidence_strings']}"
        tags.append(f"<span class='tag'>evidence cited: {cited}</span>")
    if "answer_chars" in checks:
        limit = f" / {checks['max_chars']}" if checks.get("max_chars") else ""
        over = " fail" if checks.get("over_max_chars") else ""
        tags.append(f"<span class='tag{over}'>{checks['answer_chars']}{limit} chars</span>")
    cites = "".join(_citation_in_context(c, corpus) for c in record.get("citations") or [])
    notes = "".join(f"<div class='notes'>{escape(n)}</div>" for n in record.get("notes") or [])
    return (
        f"<div class='q {'pass' if passed else 'fail'}' id='q-{escape(str(record.get('id')))}'>"
        f"{''.join(tags)}<div><b>{escape(record.get('question', ''))}</b></div>"
        f"<div class='answer'>{escape(record.get('answer', ''))}</div>{cites}{notes}"
        f"<div class='ctx'>{record.get('latency_ms', 0):.1f} ms</div></div>"
    )


def _latency_chart(records: list[dict[str, Any]]) -> str:
    if not records:
        return ""
    top = max(float(r.get("latency_ms") or 0) for r in records) or 1.0
    rows = "".join(
        f"<tr><td>{escape(str(r['id']))}</td><td><span class='bar' style='width:{max(1, int(300 * float(r.get('latency_ms') or 0) / top))}px'></span> "
        f"{float(r.get('latency_ms') or 0):.1f} ms</td></tr>"
        for r in records
    )
    return f"<h2>Latency per question</h2><table>{rows}</table>"


def render_report(summary: dict[str, Any], records: list[dict[str, Any]], corpus: dict[str, str]) -> str:
    ordered = sorted(records, key=lambda r: bool(r.get("checks", {}).get("passed")))
    failures = sum(1 for r in records if not r.get("checks", {}).get("passed"))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>Briefing QA eval</title><style>{_CSS}</style></head><body>"
        f"<h1>Briefing QA eval: {len(records)} questions, {failures} failing</h1>"
        f"<p>Gold: {escape(str(summary.get('gold', '')))} · answerer: {escape(str(summary.get('answerer', '')))}"
        f" · embedder: {escape(str(summary.get('embedder', '')))}{_distractors(summary)}"
        f"{_briefings(summary)}</p>"
        f"{_metrics(summary)}{_judged(summary)}{_comparison(summary)}"
        f"<h2>Questions (failures first)</h2>{''.join(_question(r, corpus) for r in ordered)}"
        f"{_latency_chart(records)}</body></html>"
    )
