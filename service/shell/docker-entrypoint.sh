#!/usr/bin/env sh
# Container start: bring the store in line with the bundled briefing (a no-op when it already is),
# then serve. Extra arguments go to `briefing serve`, which bounds request heads
# (BRIEFING_MAX_HEADER_BYTES) and, on 0.0.0.0, refuses ingest and delete until BRIEFING_ADMIN_KEY is set.
set -eu
briefing ingest
exec briefing serve --host "${BRIEFING_HOST:-0.0.0.0}" --port "${BRIEFING_PORT:-8000}" "$@"
