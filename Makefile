# The project's commands. Each one sets up what it needs first (into .venv; Python 3.11 and the package
# registries are all a fresh machine needs), so any of them works straight after a clone.
#
#   make serve                      ingest the bundled briefing, serve the API and the chat page on :8000
#   make serve SERVE_ARGS="--port 8001"
#   make test                       the whole test suite (test tools, the local LLM, Debian's chromium)
#   make test PYTEST_ARGS="-m 'not slow' tests/service"
#   make eval                       the answer-quality report on the development gold set (var/eval)
#   make eval-qa                    the same on human-written question sets (SQuAD 2.0, XQuAD dev; var/eval-qa)
#   make train                      rebuild the answer scorer from those sets (seeded; docs/model-card.md)
#   make setup                      only the service's install (`make test` adds the test tools and the LLM)
#
# The recipes live in .ci/ (CI calls them too), so `bash .ci/serve` and `bash .ci/test` do the same.

SERVE_ARGS ?=
PYTEST_ARGS ?=
EVAL_ARGS ?=
TRAIN_ARGS ?=
# The human-written question sets: the scorer is trained on QA_DIR's train split; their dev split,
# which it is measured on and never trained on, is bundled in eval/qa.
QA_DIR ?= ../shared/qa
EVAL_QA_DIR ?= eval/qa

.PHONY: setup serve test eval eval-qa train

setup:
	bash .ci/setup

serve:
	bash .ci/serve $(SERVE_ARGS)

test:
	bash .ci/test $(PYTEST_ARGS)

eval: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False \
	  .venv/bin/briefing eval --gold eval/gold/dev.jsonl --fresh-store --out var/eval $(EVAL_ARGS)

eval-qa: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False \
	  .venv/bin/briefing eval-qa --qa-dir $(EVAL_QA_DIR) --out var/eval-qa $(EVAL_ARGS)

train: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False \
	  .venv/bin/python -m train --qa-dir $(QA_DIR) $(TRAIN_ARGS)
