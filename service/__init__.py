"""Briefing QA: question answering over a briefing and its cited sources, with span-level citations."""
