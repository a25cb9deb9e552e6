"""The HTTP routes, one module a resource:

    ask          POST /v1/ask, POST /v1/ask/stream (server-sent events)
    chat         GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions (OpenAI-compatible)
    documents    GET /v1/sources, GET /v1/documents, GET /v1/documents/{id};
                 admin: POST /v1/ingest, DELETE /v1/documents/{id}
    health       GET /healthz, GET /readyz
    page         GET / (the chat page; its files are served under /static)
"""
