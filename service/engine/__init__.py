"""The question-answering engine: retrieval, the offline answerer (question analysis, answer plan,
evidence units, composition), the LLM answerer with its guard, and `BriefingQA`, the chain that joins
them. It stands on briefing_core and ingest, and knows nothing of HTTP or the command line."""
