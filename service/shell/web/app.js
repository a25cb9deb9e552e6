// Briefing QA: the analyst chat page. No build step, no dependencies.
// Every piece of document or model text goes into the page through textContent / createTextNode.
"use strict";

(function () {
  const KEY_STORAGE = "briefing.apiKey";
  // The conversation: its scope (a briefing id, or null for all briefings) and its answered turns.
  const CONVERSATION_STORAGE = "briefing.conversation";
  const MAX_SAVED_TURNS = 30;
  const LANGUAGES = { en: "English", zh: "Chinese", ru: "Russian" };
  const CONTEXT_CHARS = 600;

  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $("ask-form"), question: $("question"), send: $("send"), messages: $("messages"),
    empty: $("empty"), status: $("status"), side: $("side"), sideTitle: $("side-title"),
    sideBody: $("side-body"), sideClose: $("side-close"), sourcesToggle: $("sources-toggle"),
    keyToggle: $("key-toggle"), keyPanel: $("key-panel"), keyForm: $("key-form"),
    keyInput: $("key-input"), keyClear: $("key-clear"), keyMessage: $("key-message"),
    newConversation: $("new-conversation"), scope: $("scope"), briefingSelect: $("briefing-select"),
    briefingMeta: $("briefing-meta"), emptyTitle: $("empty-title"), examples: $("examples"),
  };

  // briefings: the store's briefings from /v1/briefings (null until known, or when the service has no
  // such route); scope: the briefing the conversation asks about (null: all briefings, or the only one).
  const state = {
    history: [], turns: [], busy: false, docs: new Map(), sources: new Map(), activeChip: null, sideView: null,
    briefings: null, scope: null, notice: false,
  };

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

  function str(value) {
    return typeof value === "string" ? value : (typeof value === "number" ? String(value) : "");
  }

  // ---- briefings ------------------------------------------------------------------------------

  // More than one briefing: the picker is offered. With one or none, or an older service, the page
  // asks without a scope, as it always has.
  function multi() {
    return Array.isArray(state.briefings) && state.briefings.length > 1;
  }

  function briefingById(id) {
    if (!id || !Array.isArray(state.briefings)) return null;
    return state.briefings.find((b) => b.id === id) || null;
  }

  function briefingTitle(b) {
    return b ? (str(b.title) || b.id) : "";
  }

  function titleOfBriefing(id) {
    return briefingTitle(briefingById(id)) || str(id);
  }

  function briefingFacts(b) {
    const count = Number(b.sources);
    return [
      str(b.outlet), b.author ? "by " + str(b.author) : "", str(b.date), b.id,
      Number.isFinite(count) ? count + (count === 1 ? " source" : " sources") : "",
    ].filter(Boolean);
  }

  async function loadBriefings() {
    let list = null;
    try {
      const body = await (await api("/v1/briefings")).json();
      if (body && Array.isArray(body.briefings)) {
        list = body.briefings.filter((b) => b && typeof b === "object" && typeof b.id === "string" && b.id);
      }
    } catch (err) {
      if (err && err.status === 401) return "key";
    }
    applyBriefings(list);
    return list ? "ok" : "failed";
  }

  function applyBriefings(list) {
    state.briefings = list;
    if (state.scope !== null && !(multi() && briefingById(state.scope))) {
      // The stored scope is not (or no longer) a briefing the store holds.
      const hadTurns = state.turns.length > 0;
      const gone = state.scope;
      state.scope = null;
      resetConversation();
      if (hadTurns) {
        notify(multi()
          ? "The briefing " + gone + " is no longer in the store. A new conversation was started, about all briefings."
          : "The briefing " + gone + " cannot be chosen here. A new conversation was started.");
      }
    }
    renderPicker();
    showScope();
    // Citation tags of turns restored before the list arrived: name each briefing by its title.
    for (const tag of ui.messages.querySelectorAll(".cite-briefing")) {
      tag.textContent = titleOfBriefing(tag.dataset.briefing);
    }
  }

  function renderPicker() {
    clear(ui.briefingSelect);
    if (!multi()) {
      ui.scope.hidden = true;
      ui.briefingSelect.disabled = true;
      return;
    }
    ui.briefingSelect.append(el("option", { value: "", text: "All briefings" }));
    for (const b of state.briefings) {
      const date = str(b.date);
      ui.briefingSelect.append(el("option", { value: b.id, title: b.id, text: briefingTitle(b) + (date ? " — " + date : "") }));
    }
    ui.briefingSelect.value = state.scope || "";
    ui.briefingSelect.disabled = state.busy;
    ui.scope.hidden = false;
  }

  // Everything that follows the scope: the picker's line, the empty state, the citation tags, the
  // sources panel when it is open.
  function showScope() {
    const b = multi() ? briefingById(state.scope) : null;
    if (multi()) {
      ui.briefingMeta.textContent = b
        ? briefingFacts(b).join(" · ")
        : state.briefings.length + " briefings, asked together; each citation names its briefing";
    } else {
      ui.briefingMeta.textContent = "";
    }
    if (b) ui.emptyTitle.textContent = "Ask about “" + briefingTitle(b) + "”";
    else if (multi()) ui.emptyTitle.textContent = "Ask about all " + state.briefings.length + " briefings";
    else ui.emptyTitle.textContent = "Ask about the briefing";
    // The example questions are about one briefing: offered while it is in scope (or while the page
    // does not know the store's briefings).
    const theirs = ui.examples.dataset.briefing;
    const known = Array.isArray(state.briefings) && state.briefings.length > 0;
    ui.examples.hidden = known && (!briefingById(theirs) || (state.scope !== null && state.scope !== theirs));
    ui.messages.classList.toggle("tagged", multi() && state.scope === null);
    if (!ui.side.hidden && state.sideView === "sources") showSources();
  }

  function notify(text) {
    setStatus(text);
    state.notice = Boolean(text);
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
    state.sources.clear();
    if (state.briefings === null) loadBriefings();
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

  async function streamAnswer(question, history, briefing, onEvent) {
    const body = { question, history };
    if (briefing) body.briefing = briefing;
    const res = await api("/v1/ask/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
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

  function newTurn(question, restored) {
    ui.empty.hidden = true;
    const answer = el("p", { class: "answer" });
    const reply = el("div", { class: "reply" }, el("div", { class: "who", text: "Briefing QA" }), answer);
    const turn = el(
      "li", { class: "turn", "data-status": "streaming" },
      el("div", { class: "question" }, el("div", { class: "who", text: "You" }), question),
      reply,
    );
    ui.messages.append(turn);
    if (!restored) turn.scrollIntoView({ block: "end", behavior: "smooth" });
    return { turn, reply, answer };
  }

  // ---- the conversation, kept for this tab (sessionStorage) ------------------------------------

  // What a restored turn needs to be drawn again; the retrieved passages are left out.
  function savedResult(result) {
    const out = { citations: Array.isArray(result.citations) ? result.citations : [] };
    for (const key of ["question", "answer", "refused", "language", "fallback", "briefing"]) {
      if (key in result) out[key] = result[key];
    }
    return out;
  }

  function saveConversation() {
    const turns = state.turns.slice(-MAX_SAVED_TURNS);
    for (let keep = turns.length; ; keep = Math.floor(keep / 2)) {
      try {
        const record = { briefing: state.scope, turns: turns.slice(turns.length - keep) };
        sessionStorage.setItem(CONVERSATION_STORAGE, JSON.stringify(record));
        return;
      } catch (_) {
        if (keep === 0) return; // storage disabled
      }
    }
  }

  function restoreConversation() {
    let record = null;
    try {
      record = JSON.parse(sessionStorage.getItem(CONVERSATION_STORAGE) || "null");
    } catch (_) {
      record = null;
    }
    if (!record || typeof record !== "object") return;
    state.scope = typeof record.briefing === "string" && record.briefing ? record.briefing : null;
    for (const saved of Array.isArray(record.turns) ? record.turns : []) {
      if (!saved || typeof saved.question !== "string" || !saved.result || typeof saved.result !== "object") continue;
      const answer = typeof saved.result.answer === "string" ? saved.result.answer : "";
      const view = newTurn(saved.question, true);
      renderResult(view, saved.result);
      view.turn.dataset.status = "done";
      state.turns.push(saved);
      state.history.push({ role: "user", content: saved.question }, { role: "assistant", content: answer });
    }
  }

  // A new, empty conversation about the current scope.
  function resetConversation() {
    state.history = [];
    state.turns = [];
    clear(ui.messages);
    ui.empty.hidden = false;
    saveConversation();
  }

  async function ask(question) {
    if (state.busy) return;
    question = question.trim();
    if (!question) return;
    state.busy = true;
    ui.send.disabled = true;
    // Every turn of a conversation has its scope; the picker waits until the answer is in.
    ui.briefingSelect.disabled = true;
    if (state.notice) notify("");
    const view = newTurn(question);
    const history = state.history.slice(-20);
    const scope = state.scope;
    let text = "";
    let result = null;
    try {
      await streamAnswer(question, history, scope, (event, data) => {
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
      state.turns.push({ question, result: savedResult(result) });
      saveConversation();
      view.turn.dataset.status = "done";
    } catch (err) {
      view.reply.classList.add("failed");
      clear(view.answer);
      view.answer.textContent = (err && err.message) || "The question could not be answered.";
      view.turn.dataset.status = "error";
    } finally {
      state.busy = false;
      ui.send.disabled = false;
      ui.briefingSelect.disabled = !multi();
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
      type: "button", class: "chip", "data-n": c.n, "data-doc": c.doc_id, "data-briefing": str(c.briefing) || null,
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
        const briefing = str(c.briefing);
        // Shown (by the stylesheet) while the conversation asks all of several briefings.
        const tag = briefing ? el("span", { class: "cite-in" },
          el("span", { class: "visually-hidden", text: "From the briefing " }),
          el("span", { class: "cite-briefing", "data-briefing": briefing, text: titleOfBriefing(briefing) }), " ") : null;
        list.append(el(
          "li", { class: "cite", "data-briefing": briefing || null },
          chip(c),
          el("div", { class: "cite-body" },
            el("p", { class: "cite-quote", lang: c.language || null, text: quoted(c.quote || "") }),
            el("div", { class: "cite-src" }, tag,
              citationLabel(c) + (c.attributed_to ? " — attributed to " + c.attributed_to : ""))),
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
    if (multi() && str(c.briefing)) {
      ui.sideBody.append(el("p", { class: "doc-meta doc-briefing", text: "Briefing: " + titleOfBriefing(str(c.briefing)) }));
    }
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
      const item = el("li", { class: "source", "data-source": s.source_id, "data-briefing": str(s.briefing) || null },
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

  // A briefing's heading over its sources: the article's title, its outlet, date and id.
  function briefingHeading(b, id) {
    return el("div", { class: "source-group-head" },
      el("h3", { class: "group-title", text: b ? briefingTitle(b) : (id ? str(id) : "Documents in no briefing") }),
      b ? el("p", { class: "source-meta", text: briefingFacts(b).join(" · ") }) : null);
  }

  function sourcesKey() {
    return multi() ? (state.scope || "*") : "";
  }

  async function showSources() {
    openSide("Sources", "sources");
    const note = el("p", { class: "side-note", text: "Loading the sources…" });
    ui.sideBody.append(note);
    const key = sourcesKey();
    const scope = multi() ? state.scope : null;
    try {
      if (!state.sources.has(key)) {
        const path = scope ? "/v1/sources?briefing=" + encodeURIComponent(scope) : "/v1/sources";
        const body = await (await api(path)).json();
        state.sources.set(key, Array.isArray(body) ? body : []);
      }
      if (state.sideView !== "sources" || sourcesKey() !== key) return;
      const items = state.sources.get(key);
      clear(ui.sideBody);
      if (scope) {
        // The chosen briefing: its article, then the sources it cites.
        const group = el("section", { class: "source-group", "data-briefing": scope },
          briefingHeading(briefingById(scope), scope), renderSources(items));
        ui.sideBody.append(group);
      } else if (multi()) {
        // All briefings: each one's sources under its article's title, in the order of the picker.
        const groups = new Map(state.briefings.map((b) => [b.id, []]));
        const others = [];
        for (const s of items) {
          const list = groups.get(str(s.briefing));
          (list || others).push(s);
        }
        for (const [id, list] of groups) {
          if (!list.length) continue;
          ui.sideBody.append(el("section", { class: "source-group", "data-briefing": id },
            briefingHeading(briefingById(id), id), renderSources(list)));
        }
        if (others.length) {
          ui.sideBody.append(el("section", { class: "source-group" }, briefingHeading(null, null), renderSources(others)));
        }
      } else {
        ui.sideBody.append(renderSources(items));
      }
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

  // "New conversation" keeps the briefing the picker shows.
  ui.newConversation.addEventListener("click", () => {
    if (state.busy) return;
    resetConversation();
    if (state.notice) notify("");
    ui.question.focus();
  });

  // Another briefing starts another conversation: the turns of one never mix scopes.
  ui.briefingSelect.addEventListener("change", () => {
    const next = ui.briefingSelect.value || null;
    if (next === state.scope) return;
    if (state.busy || !multi()) {
      ui.briefingSelect.value = state.scope || "";
      return;
    }
    const hadTurns = state.turns.length > 0 || ui.messages.childElementCount > 0;
    state.scope = next;
    resetConversation();
    const name = next ? "“" + titleOfBriefing(next) + "”" : "all briefings";
    notify(hadTurns ? "Now asking about " + name + ". A new conversation was started." : "");
    showScope();
  });

  // ---- start --------------------------------------------------------------------------------------

  restoreConversation();
  showScope();
  waitUntilReady().then(async () => {
    // Also a probe, so that a service with an API key asks for it before the first question.
    const outcome = await loadBriefings();
    if (outcome === "failed") api("/v1/models").catch(() => {});
  });
  ui.question.focus();
})();
