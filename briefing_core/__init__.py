"""The core every other package stands on, importing none of them: settings, errors, the text,
offset and span helpers, the embedder seam and the Chroma store."""
