// Briefing QA: the analyst chat page. No build step, no dependencies.
// Every piece of document or model text goes into the page through textContent / createTextNode.
"use strict";

(function () {
  const KEY_STORAGE = "briefing.apiKey";
  const LANGUAGES = { en: "English", zh: "Chinese", ru: "Russian" };
  const CONTEXT_CHARS = 600;

  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $("ask-form"), question: $("question"), send: $("send"), messages: $("messages"),
    empty: $("empty"), status: $("status"), side: $("side"), sideTitle: $("side-title"),
    sideBody: $("side-body"), sideClose: $("side-close"), sourcesToggle: $("sources-toggle"),
    keyToggle: $("key-toggle"), keyPanel: $("key-panel"), keyForm: $("key-form"),
    keyInput: $("key-input"), keyClear: $("key-clear"), keyMessage: $("key-message"),
    newConversation: $("new-conversation"),
  };

  const state = { history: [], busy: false, docs: new Map(), sources: null, activeChip: null, sideView: null };

  // ---- small DOM helpers ----------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function safeHttpUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      const url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function languageName(code) {
    return LANGUAGES[code] || code || "";
  }

  // ---- API ----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function apiKey() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ""; } catch (_) { return ""; }
  }

  function headers(extra) {
    const out = Object.assign({}, extra || {});
    const key = apiKey();
    if (key) out.Authorization = "Bearer " + key;
    return out;
  }

  async function api(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = headers(opts.headers);
    let res;
    try {
      res = await fetch(path, opts);
    } catch (_) {
      throw new ApiError(0, "The service cannot be reached.");
    }
    if (res.ok) return res;
    let message = res.statusText || "request failed";
    try {
      const body = await res.json();
      if (body && typeof body.error === "string") message = body.error;
    } catch (_) { /* not JSON */ }
    if (res.status === 401) {
      showKeyPanel(apiKey() ? "That API key was refused. Enter a valid key." : "This service needs an API key.", true);
    }
    if (res.status === 429) {
      const wait = res.headers.get("Retry-After");
      if (wait) message += " (retry in " + wait + " s)";
    }
    throw new ApiError(res.status, message);
  }

  // ---- status line & readiness ----------------------------------------------------------

  function setStatus(text, isError) {
    if (!text) {
      ui.status.hidden = true;
      ui.status.textContent = "";
      return;
    }
    ui.status.hidden = false;
    ui.status.textContent = text;
    ui.status.classList.toggle("error", Boolean(isError));
  }

  async function waitUntilReady() {
    for (;;) {
      let body = null;
      let ok = false;
      try {
        const res = await fetch("/readyz");
        ok = res.ok;
        body = await res.json().catch(() => null);
      } catch (_) { /* server restarting */ }
      if (ok) {
        setStatus("");
        return;
      }
      const detail = body && typeof body.error === "string" ? " " + body.error : "";
      const loading = !body || body.status === "loading";
      setStatus(loading ? "The service is loading its models…" : "The service is unavailable." + detail, !loading);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  // ---- API key panel -------------------------------------------------------------------------

  function showKeyPanel(message, isError) {
    ui.keyPanel.hidden = false;
    if (message) {
      ui.keyMessage.textContent = message;
      ui.keyMessage.classList.toggle("error", Boolean(isError));
    }
    ui.keyInput.focus();
  }

  ui.keyToggle.addEventListener("click", () => {
    if (ui.keyPanel.hidden) showKeyPanel();
    else ui.keyPanel.hidden = true;
  });

  ui.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = ui.keyInput.value.trim();
    try {
      if (value) sessionStorage.setItem(KEY_STORAGE, value);
    } catch (_) { /* storage disabled */ }
    ui.keyInput.value = "";
    ui.keyMessage.textContent = "Key saved for this tab.";
    ui.keyMessage.classList.remove("error");
    ui.keyPanel.hidden = true;
    state.sources = null;
    if (!ui.side.hidden && state.sideView === "sources") showSources();
  });

  ui.keyClear.addEventListener("click", () => {
    try { sessionStorage.removeItem(KEY_STORAGE); } catch (_) { /* ignore */ }
    ui.keyMessage.textContent = "Key forgotten.";
    ui.keyMessage.classList.remove("error");
  });

  // ---- asking ---------------------------------------------------------------------------------

  function parseEvent(raw) {
    let event = "message";
    const data = [];
    for (const line of raw.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    return { event, data: data.join("\n") };
  }

  async function streamAnswer(question, history, onEvent) {
    const res = await api("/v1/ask/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ question, history }),
    });
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      buffer = buffer.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const raw = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const evt = parseEvent(raw);
        if (evt.data) onEvent(evt.event, JSON.parse(evt.data));
      }
    }
  }

  function newTurn(question) {
    ui.empty.hidden = true;
    const answer = el("p", { class: "answer" });
    const reply = el("div", { class: "reply" }, el("div", { class: "who", text: "Briefing QA" }), answer);
    const turn = el(
      "li", { class: "turn", "data-status": "streaming" },
      el("div", { class: "question" }, el("div", { class: "who", text: "You" }), question),
      reply,
    );
    ui.messages.append(turn);
    turn.scrollIntoView({ block: "end", behavior: "smooth" });
    return { turn, reply, answer };
  }

  async function ask(question) {
    if (state.busy) return;
    question = question.trim();
    if (!question) return;
    state.busy = true;
    ui.send.disabled = true;
    const view = newTurn(question);
    const history = state.history.slice(-20);
    let text = "";
    let result = null;
    try {
      await streamAnswer(question, history, (event, data) => {
        if (event === "meta") {
          view.answer.textContent = "";
        } else if (event === "delta") {
          text += typeof data.text === "string" ? data.text : "";
          view.answer.textContent = text;
        } else if (event === "citations") {
          result = data;
        }
      });
      if (!result) throw new ApiError(0, "The answer stream ended early.");
      renderResult(view, result);
      view.reply.scrollIntoView({ block: "nearest", behavior: "smooth" });
      state.history.push({ role: "user", content: question }, { role: "assistant", content: result.answer });
      view.turn.dataset.status = "done";
    } catch (err) {
      view.reply.classList.add("failed");
      clear(view.answer);
      view.answer.textContent = (err && err.message) || "The question could not be answered.";
      view.turn.dataset.status = "error";
    } finally {
      state.busy = false;
      ui.send.disabled = false;
      ui.question.focus();
    }
  }

  // ---- rendering an answer --------------------------------------------------------------------

  // A quote is shown between “ and ”, unless it brings its own mark at that end: a quote ending a
  // quotation ("… vital interests.”") would otherwise show its closing mark twice.
  function quoted(text) {
    const open = /^[“"]/.test(text) ? "" : "“";
    const close = /[”"]$/.test(text) ? "" : "”";
    return open + text + close;
  }

  function citationLabel(c) {
    const parts = [c.title, c.outlet, c.date].filter((x) => typeof x === "string" && x);
    return parts.join(" · ");
  }

  function chip(c) {
    return el("button", {
      type: "button", class: "chip", "data-n": c.n, "data-doc": c.doc_id,
      "aria-label": "Citation " + c.n + ": " + citationLabel(c), title: citationLabel(c),
      text: "[" + c.n + "]",
      onclick: (event) => openCitation(c, event.currentTarget),
    });
  }

  function renderAnswerText(node, text, citations) {
    clear(node);
    const byNumber = new Map(citations.map((c) => [Number(c.n), c]));
    const pattern = /\[(\d{1,3})\]/g;
    let last = 0;
    let match;
    while ((match = pattern.exec(text)) !== null) {
      if (match.index > last) node.append(document.createTextNode(text.slice(last, match.index)));
      const c = byNumber.get(Number(match[1]));
      node.append(c ? chip(c) : document.createTextNode(match[0]));
      last = pattern.lastIndex;
    }
    if (last < text.length) node.append(document.createTextNode(text.slice(last)));
  }

  function renderResult(view, result) {
    const citations = Array.isArray(result.citations) ? result.citations : [];
    const answerText = typeof result.answer === "string" ? result.answer : "";
    if (result.language) view.answer.setAttribute("lang", result.language);
    if (result.refused) {
      view.reply.classList.add("refused");
      view.reply.insertBefore(el("div", { class: "notice-label", text: "Not in the sources" }), view.answer);
      view.answer.textContent = answerText;
    } else {
      renderAnswerText(view.answer, answerText, citations);
    }
    if (citations.length) {
      const list = el("ol", { class: "cites", "aria-label": "Citations" });
      for (const c of citations) {
        list.append(el(
          "li", { class: "cite" },
          chip(c),
          el("div", { class: "cite-body" },
            el("p", { class: "cite-quote", lang: c.language || null, text: quoted(c.quote || "") }),
            el("div", { class: "cite-src", text: citationLabel(c) + (c.attributed_to ? " — attributed to " + c.attributed_to : "") })),
        ));
      }
      view.reply.append(list);
    }
    const copied = el("span", { class: "copied", "aria-live": "polite" });
    const copy = el("button", {
      type: "button", class: "copy", text: "Copy",
      onclick: () => copyText(plainText(result)).then(
        () => { copied.textContent = "Copied"; setTimeout(() => { copied.textContent = ""; }, 2000); },
        () => { copied.textContent = "Copy failed"; },
      ),
    });
    view.reply.append(el("div", { class: "actions" }, copy, copied));
    const notes = [];
    if (result.fallback) notes.push(result.fallback);
    if (notes.length) view.reply.append(el("p", { class: "notes", text: "Note: " + notes.join("; ") }));
  }

  function plainText(result) {
    const lines = [String(result.answer || "")];
    const citations = Array.isArray(result.citations) ? result.citations : [];
    if (citations.length) {
      lines.push("");
      for (const c of citations) {
        lines.push("[" + c.n + "] " + quoted(c.quote || "") + " — " + citationLabel(c));
      }
    }
    return lines.join("\n");
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return;
      } catch (_) { /* fall back below */ }
    }
    const area = el("textarea", { class: "visually-hidden", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    if (!ok) throw new Error("copy failed");
  }

  // ---- side panel: a citation in its document --------------------------------------------------

  function openSide(title, view) {
    state.sideView = view;
    ui.sideTitle.textContent = title;
    clear(ui.sideBody);
    ui.side.hidden = false;
  }

  ui.sideClose.addEventListener("click", () => {
    ui.side.hidden = true;
    state.sideView = null;
    if (state.activeChip) state.activeChip.removeAttribute("aria-pressed");
  });

  async function documentText(docId) {
    if (!state.docs.has(docId)) {
      const promise = api("/v1/documents/" + encodeURIComponent(docId)).then((res) => res.json());
      state.docs.set(docId, promise);
      promise.catch(() => state.docs.delete(docId));
    }
    return state.docs.get(docId);
  }

  // Offsets from the service count code points; JavaScript strings count UTF-16 units.
  function utf16Offset(text, codePoints) {
    if (!/[\uD800-\uDFFF]/.test(text)) return codePoints;
    let units = 0;
    let seen = 0;
    for (const ch of text) {
      if (seen >= codePoints) break;
      units += ch.length;
      seen += 1;
    }
    return units;
  }

  function locate(text, c) {
    let start = utf16Offset(text, Number(c.start) || 0);
    let end = utf16Offset(text, Number(c.end) || 0);
    const quote = typeof c.quote === "string" ? c.quote : "";
    if (quote && text.slice(start, end) !== quote) {
      const found = text.indexOf(quote);
      if (found >= 0) {
        start = found;
        end = found + quote.length;
      }
    }
    return [Math.max(0, Math.min(start, text.length)), Math.max(0, Math.min(end, text.length))];
  }

  function contextBounds(text, start, end) {
    let from = Math.max(0, start - CONTEXT_CHARS);
    let to = Math.min(text.length, end + CONTEXT_CHARS);
    if (from > 0) {
      const para = text.lastIndexOf("\n", start);
      const space = text.indexOf(" ", from);
      from = para >= from ? para + 1 : (space >= 0 && space < start ? space + 1 : from);
    }
    if (to < text.length) {
      const para = text.indexOf("\n", end);
      const space = text.lastIndexOf(" ", to);
      to = para >= 0 && para <= to ? para : (space > end ? space : to);
    }
    return [from, to];
  }

  async function openCitation(c, button) {
    if (state.activeChip) state.activeChip.removeAttribute("aria-pressed");
    state.activeChip = button || null;
    if (button) button.setAttribute("aria-pressed", "true");
    openSide("Citation [" + c.n + "]", "citation");
    const loading = el("p", { class: "side-note", text: "Loading the document…" });
    ui.sideBody.append(loading);
    let doc;
    try {
      doc = await documentText(c.doc_id);
    } catch (err) {
      loading.textContent = "The document could not be loaded: " + ((err && err.message) || "error");
      return;
    }
    if (state.sideView !== "citation" || state.activeChip !== (button || null)) return;
    clear(ui.sideBody);
    const meta = doc.metadata || {};
    const lang = meta.language || c.language || "";
    const facts = [meta.outlet || c.outlet, meta.date || c.date, languageName(lang), meta.kind || c.kind]
      .filter((x) => typeof x === "string" && x);
    ui.sideBody.append(el("h3", { class: "doc-title", text: meta.title || c.title || c.doc_id }));
    if (meta.original_title) {
      ui.sideBody.append(el("p", { class: "doc-meta", lang: lang || null, text: String(meta.original_title) }));
    }
    ui.sideBody.append(el("p", { class: "doc-meta", text: facts.join(" · ") }));
    if (c.attributed_to) {
      ui.sideBody.append(el("p", { class: "attribution" }, "Attributed to: ", el("strong", { text: c.attributed_to })));
    }
    const text = typeof doc.text === "string" ? doc.text : "";
    const [start, end] = locate(text, c);
    const [from, to] = contextBounds(text, start, end);
    const mark = el("mark", { text: text.slice(start, end) });
    const passage = el(
      "div", { class: "passage", lang: lang || null },
      from > 0 ? el("span", { class: "elided", text: "… " }) : null,
      text.slice(from, start), mark, text.slice(end, to),
      to < text.length ? el("span", { class: "elided", text: " …" }) : null,
    );
    ui.sideBody.append(passage);
    ui.sideBody.append(el("p", {
      class: "side-note",
      text: "Characters " + c.start + "–" + c.end + " of " + (c.doc_id || "") + ".",
    }));
    mark.scrollIntoView({ block: "center", behavior: "smooth" });
  }

  // ---- side panel: the briefing's sources --------------------------------------------------------

  function renderSources(items) {
    const list = el("ul", { class: "source-list" });
    for (const s of items) {
      const lang = s.language || "";
      const badge = s.full_text
        ? el("span", { class: "badge full", text: "full text" })
        : el("span", { class: "badge quoted", text: "quoted only" });
      const item = el("li", { class: "source", "data-source": s.source_id },
        el("p", { class: "source-title" }, String(s.title || s.label || s.source_id), badge));
      if (s.original_title) item.append(el("p", { class: "source-original", lang: lang || null, text: String(s.original_title) }));
      const outlet = [s.outlet, s.outlet_original].filter((x) => typeof x === "string" && x);
      const facts = [outlet.join(" / "), s.type, s.date, languageName(lang), s.kind === "article" ? "the article" : null]
        .filter((x) => typeof x === "string" && x);
      item.append(el("p", { class: "source-meta", text: facts.join(" · ") }));
      const quotes = Array.isArray(s.quotes) ? s.quotes.length : 0;
      if (quotes) item.append(el("p", { class: "source-meta", text: quotes + (quotes === 1 ? " passage quoted" : " passages quoted") + " in the article" }));
      const href = safeHttpUrl(s.url);
      if (href) item.append(el("a", { href, target: "_blank", rel: "noopener noreferrer", text: href }));
      list.append(item);
    }
    return list;
  }

  async function showSources() {
    openSide("Sources", "sources");
    const note = el("p", { class: "side-note", text: "Loading the sources…" });
    ui.sideBody.append(note);
    try {
      if (!state.sources) state.sources = await (await api("/v1/sources")).json();
      if (state.sideView !== "sources") return;
      clear(ui.sideBody);
      ui.sideBody.append(renderSources(state.sources));
    } catch (err) {
      note.textContent = "The sources could not be loaded: " + ((err && err.message) || "error");
    }
  }

  ui.sourcesToggle.addEventListener("click", () => {
    if (!ui.side.hidden && state.sideView === "sources") {
      ui.side.hidden = true;
      state.sideView = null;
    } else {
      showSources();
    }
  });

  // ---- composer -----------------------------------------------------------------------------------

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = ui.question.value;
    if (!question.trim() || state.busy) return;
    ui.question.value = "";
    ask(question);
  });

  ui.question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.form.requestSubmit();
    }
  });

  for (const button of document.querySelectorAll(".example")) {
    button.addEventListener("click", () => {
      ui.question.value = button.textContent;
      ui.form.requestSubmit();
    });
  }

  ui.newConversation.addEventListener("click", () => {
    state.history = [];
    clear(ui.messages);
    ui.empty.hidden = false;
    ui.question.focus();
  });

  // ---- start --------------------------------------------------------------------------------------

  waitUntilReady().then(() => {
    // Probe once, so that a service with an API key asks for it before the first question.
    api("/v1/models").catch(() => {});
  });
  ui.question.focus();
})();
