"""Briefing QA's service: the question-answering engine (`service.engine`) and the shell around it
(`service.shell`: HTTP API, chat page, CLI). Both stand on briefing_core and ingest."""
