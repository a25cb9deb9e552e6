# Briefing QA: serves the bundled briefing offline on start.
#   docker build -t briefing-qa .
#   docker run -p 8000:8000 -v briefing-store:/data \
#     -e BRIEFING_ADMIN_KEY=... -e BRIEFING_API_KEY=... briefing-qa
# It listens on 0.0.0.0: without BRIEFING_ADMIN_KEY, ingest and delete answer 403; without
# BRIEFING_API_KEY, anyone who reaches the port can ask.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False \
    BRIEFING_STORE_DIR=/data/store BRIEFING_HOST=0.0.0.0 BRIEFING_PORT=8000

WORKDIR /app

# LightGBM (the answer scorer) needs the OpenMP runtime, which the slim image lacks.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*

# Dependencies first, from pyproject.toml alone, so that a code change reuses this layer.
# The CPU build of torch is pinned and installed before anything can pull a CUDA build.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
COPY pyproject.toml ./
RUN pip install --index-url "$TORCH_INDEX" torch==2.13.0 \
 && python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/req.txt', 'w').write('\n'.join(x for x in d if not x.startswith('torch')))" \
 && pip install -r /tmp/req.txt

# The code and the bundled briefing.
COPY briefing_core ./briefing_core
COPY ingest ./ingest
COPY service ./service
COPY eval ./eval
COPY corpus ./corpus
COPY README.md ./
RUN pip install --no-deps -e . \
 && useradd --create-home --uid 10001 briefing \
 && mkdir -p /data && chown briefing /data

USER briefing
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BRIEFING_PORT', '8000'), timeout=4)"
ENTRYPOINT ["/app/service/shell/docker-entrypoint.sh"]
