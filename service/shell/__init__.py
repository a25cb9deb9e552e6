"""The shell around the engine: the HTTP API (app factory, routes by resource, shared dependencies,
limits), the chat page and the `briefing` command. Nothing below it imports it."""
