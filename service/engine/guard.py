"""Prompt-injection guards: source text that addresses the assistant, and answer text that obeys it.

The policy (docs/security.md):

* An answer may quote a document verbatim inside a citation, but it never follows an instruction. A
  sentence of a source that reads as an instruction to the assistant — in English, Chinese or Russian,
  plain or hidden behind base64, percent-encoding, HTML entities, zero-width characters or look-alike
  letters — or that carries a markdown image or a script link, is never chosen as an answer span and is
  withheld from the LLM's prompt. It stays in the stored document (citations point into it unchanged).
* A sentence of an LLM answer is dropped when it reads as such an instruction or as obedience to one,
  repeats the system prompt, carries a link or an image, names a URL that the retrieved passages do not
  contain, or carries a code-like token ("PWNED-7f3a", "XJ-42") that no clean retrieved passage contains.

The patterns are deliberately about the *addressing* of a system (imperatives to print, reveal, ignore;
"system prompt"; "you are now"), not about topics, so a news text that reports on prompt injection in
the third person is still quotable.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
from urllib.parse import unquote

# ---------------------------------------------------------------------------------------
# Normalisation: every form a hidden instruction can take is matched in its decoded form
# ---------------------------------------------------------------------------------------

# Look-alike letters: Cyrillic and Greek forms of Latin letters (and back, for Russian patterns).
_TO_LATIN = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "ո": "n",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "τ": "t", "ι": "i", "κ": "k", "ε": "e",
    "Α": "A", "Β": "B", "Ε": "E", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P",
    "Τ": "T", "Υ": "Y", "Χ": "X", "Ζ": "Z",
})
_TO_CYRILLIC = str.maketrans({
    "a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "k": "к", "m": "м", "t": "т",
    "b": "в", "h": "н", "A": "А", "E": "Е", "O": "О", "P": "Р", "C": "С", "X": "Х", "Y": "У", "K": "К",
    "M": "М", "T": "Т", "B": "В", "H": "Н",
})
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_ENTITY = re.compile(r"&(#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);")
_SPACED_LETTERS = re.compile(r"\b(?:\w[ .\-_*]){3,}\w\b")


def _strip_invisible(text: str) -> str:
    """NFKC (full-width and compatibility forms), without format characters (zero-width spaces,
    joiners, bidi controls, soft hyphens) or variation selectors."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(
        ch for ch in text
        if unicodedata.category(ch) != "Cf" and not 0xFE00 <= ord(ch) <= 0xFE0F
    )


def _base64_texts(text: str) -> list[str]:
    out = []
    for run in _BASE64_RUN.findall(text):
        padded = run + "=" * (-len(run) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(padded)
            except (binascii.Error, ValueError):
                continue
            try:
                decoded = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if decoded and sum(ch.isprintable() or ch.isspace() for ch in decoded) >= 0.9 * len(decoded):
                out.append(decoded)
                break
    return out


def variants(text: str, depth: int = 2) -> list[str]:
    """The text as written and as decoded: without invisible characters, HTML entities resolved,
    percent-escapes resolved, base64 runs decoded, spaced-out letters joined, look-alike letters
    folded to Latin and to Cyrillic."""
    base = _strip_invisible(text)
    forms = [base]
    if _ENTITY.search(base):
        forms.append(_strip_invisible(html.unescape(base)))
    if _PERCENT.search(base):
        forms.append(_strip_invisible(unquote(base.replace("+", " "))))
    if _SPACED_LETTERS.search(base):
        forms.append(_SPACED_LETTERS.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), base))
    if depth > 0:
        for decoded in _base64_texts(base):
            forms.extend(variants(decoded, depth - 1))
    folded = []
    for form in forms:
        latin = form.translate(_TO_LATIN)
        if latin != form:
            folded.append(latin)
        cyrillic = form.translate(_TO_CYRILLIC)
        if cyrillic != form and re.search(r"[а-яё]", form, re.IGNORECASE):
            folded.append(cyrillic)
    return list(dict.fromkeys(forms + folded))


# ---------------------------------------------------------------------------------------
# Instructions addressed to the assistant
# ---------------------------------------------------------------------------------------

_I = re.IGNORECASE
_CLAUSE = r"(?:^|[\n.!?:;,(\"“”«»—–]\s*|\b(?:then|please|now|instead|also|just|simply)\s+)"
_ANY = r"[^.!?\n]"
# A code-like token: letters and digits joined by hyphens ("PWNED-7f3a"), or a run of five capitals.
_CODE = r"\b(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+\b|(?-i:\b[A-Z]{5,}\b)"

_INSTRUCTION_PATTERNS = [
    # English
    rf"\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon)\b{_ANY}{{0,40}}"
    r"(?:\b(?:instructions?|prompts?|guardrails|directives|system message)\b|\b(?:previous|prior|above|"
    r"earlier|preceding|all|your|original|former)\s+(?:\w+\s+)?(?:rules|directions|guidelines|context)\b)",
    # "the system prompt", "hidden instructions"; a document's own "original message" or "internal rules"
    # is prose (a packet-switching article's reassembled message), so only the assistant's own
    # system or developer message counts as one.
    r"\b(?:system|developer)\s+(?:prompt|instructions?|message|rules)\b|"
    r"\b(?:hidden|initial|original|secret|internal)\s+(?:prompt|instructions?)\b",
    rf"\b(?:reveal|print|show|output|repeat|display|leak|dump|tell me|share|disclose|recite)\b{_ANY}{{0,30}}"
    r"\b(?:your|the)\s+(?:(?:system|initial|hidden|original)\s+)?(?:prompt|instructions|rules|configuration)\b",
    r"\b(?:you are now|you're now|act as (?:an?|the|my|your|DAN)\b|pretend (?:to be|you are)|role-?play as|"
    r"from now on,? you|"
    r"developer mode|jailbreak|do anything now|DAN mode)\b",
    r"\b(?:new|updated|real|actual|true)\s+(?:system\s+)?instructions?\s*:",
    r"\b(?:AI assistant|assistant|chatbot|language model|LLM|you)\b[^.!?\n]{0,25}"
    r"\b(?:must|shall|are (?:required|instructed|told) to|is (?:required|instructed|told) to)\b[^.!?\n]{0,40}"
    r"\b(?:print|output|say|reply|respond|reveal|ignore|repeat)\b",
    r"(?:^|[\n.!?]\s*)(?:system|assistant|developer)\s*:",
    r"<\|?(?:system|im_start|im_end|endoftext)\|?>|\[/?(?:INST|SYS)\]|</?(?:question|sources?|system|instructions?)>",
    # Chinese
    r"(?:忽略|无视|忽视|忘记|忘掉|不要理会|不要遵守|不必遵守|跳过|覆盖|绕过)[^。！？\n]{0,20}"
    r"(?:指令|指示|提示|规则|说明|要求|设定|命令|限制)",
    r"系统(?:提示|指令|消息|设定)|(?:初始|隐藏|原始|内部)(?:提示|指令|设定)",
    r"提示词",
    r"(?:输出|打印|回复|说出|写出|重复|添加|加上|插入|附上)[^。！？\n]{0,30}"
    r"(?:标记|代码|暗号|口令|以下内容|下面的内容|这段文字|这个词|图片|图像|链接|网址|原文|提示词|指令)",
    r"(?:泄露|透露|公开|展示|告诉我)[^。！？\n]{0,10}(?:提示|指令|规则|设定)",
    r"(?:你现在是|你将扮演|请扮演|扮演一个|假装你是|从现在开始，?你|开发者模式|越狱模式)",
    r"(?:助手|人工智能|AI|机器人|你)[^。！？\n]{0,10}(?:必须|务必|一定要)[^。！？\n]{0,20}"
    r"(?:输出|打印|回复|回答|说出|写出|添加|插入|附上|忽略|透露)",
    # Russian
    r"(?:игнорир\w*|проигнорир\w*|забудь\w*|забыть|не обращай\w* внимани\w*|отбрось\w*|отмени\w*|"
    rf"пренебреги\w*|обойди\w*)\s{_ANY}{{0,40}}"
    r"(?:инструкци\w*|указани\w*|правил\w*|промпт\w*|подсказк\w*|команд\w*|ограничени\w*)",
    r"системн\w+\s+(?:промпт\w*|подсказк\w*|инструкци\w*|сообщени\w*)|"
    r"(?:скрыт\w+|исходн\w+|начальн\w+|внутренн\w+)\s+(?:промпт\w*|подсказк\w*|инструкци\w*)",
    r"\bпромпт\w*",
    r"(?:ты теперь|теперь ты|представь, что ты|притворись|веди себя как|режим разработчика|джейлбрейк)",
    r"\b(?:ассистент|помощник|ИИ|нейросеть|чат-?бот|языковая модель|ты|вы)\w*[^.!?\n]{0,25}"
    r"(?:должен|должна|должны|обязан|обязана|обязаны)[^.!?\n]{0,40}"
    r"(?:вывести|напечатать|написать|ответить|сказать|добавить|вставить|раскрыть|повторить|игнорировать|включить)",
]
# An imperative at the start of a clause whose object, close behind, is the answer's output.
_IMPERATIVE = re.compile(
    _CLAUSE
    + r"(?:print|output|say|type|write|repeat|respond|reply|answer|return|echo|include|add|append|insert|"
    r"render|display|show|end|begin|start|translate|put|place)\b" + _ANY + r"{0,60}?"
    r"(?:\b(?:your (?:answer|response|reply|output)|the (?:answer|response|reply|output)|"
    r"the (?:word|phrase|text|token|string|code|marker|following)|this (?:text|image|link|url|message|"
    r"markdown|token|code)|(?:the following|a|an|my|that) (?:image|link|url)|marker|token|code ?word|"
    r"markdown|pwned|hacked)\b"
    r"|!\[|https?://|\[[^\]]*\]\(|" + _CODE + ")"
    # Russian second-person imperatives are unambiguous: no clause start needed.
    r"|\b(?:выведи|напечатай|напиши|ответь|скажи|покажи|добавь|вставь|раскрой|повтори|отобрази|верни|"
    r"включи|начни|закончи|заверши|поставь)(?:те)?\b" + _ANY + r"{0,60}?"
    r"(?:\b(?:ответ\w*|маркер\w*|код\w*|токен\w*|слов\w*|фраз\w*|текст\w*|следующ\w*|ссылк\w*|"
    r"изображени\w*|картинк\w*|дословно)|!\[|https?://|\[[^\]]*\]\(|" + _CODE + ")",
    _I,
)
_INSTRUCTION_PATTERNS += [
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+(?:of\s+)?)?(?:the|everything)\s+(?:above|before|previous|prior)\b",
    r"(?:无视|忽略|忽视|忘记|不要理会)(?:以上|上面|上述|之前|前面|此前)",
    r"(?:输出|打印|回复|说出|写出|重复|添加|插入|附上|回答)[^。！？\n]{0,30}?"
    rf"(?:{_CODE}|!\[|https?://|\[[^\]]*\]\()",
    r"не обращай\w* внимани\w* на\s+(?:\w+\s+)?(?:выше|сказанное|написанное|предыдущ\w*)",
    # "... and print PWNED-7f3a": an imperative after "and" counts when its object is a code or markup.
    r"\b(?:and|then)\s+(?:print|output|say|type|write|repeat|respond|reply|answer|return|echo|include|add|"
    rf"append|insert|render|display|show)\b{_ANY}{{0,40}}?(?:{_CODE}|!\[|https?://|\[[^\]]*\]\()",
]
_INSTRUCTION = [re.compile(p, _I) for p in _INSTRUCTION_PATTERNS]

# Active content: a markdown image (fetched by a renderer: exfiltration), or a script link.
_ACTIVE = re.compile(
    r"!\[[^\]\n]*\]\(\s*[^)\s]+|\]\(\s*(?:javascript|vbscript|data)\s*:|\bjavascript\s*:|\bvbscript\s*:", _I
)


def _reads_as_instruction(form: str) -> bool:
    return any(p.search(form) for p in _INSTRUCTION) or bool(_IMPERATIVE.search(form))


def is_instruction(text: str) -> bool:
    """The text, in any of its decoded forms, reads as an instruction to the assistant."""
    return any(_reads_as_instruction(form) for form in variants(text))


def is_suspicious(text: str) -> bool:
    """A source span an answer must not use: an instruction to the assistant, or active content."""
    return any(_reads_as_instruction(form) or _ACTIVE.search(form) for form in variants(text))


_PAYLOAD_BITS = re.compile(_CODE + r"|https?://|www\.|!\[|\]\(|javascript\s*:", _I)


def usable_parts(text: str) -> list[tuple[int, int]]:
    """The sentences of a suspicious span that can still be used: those that neither read as an
    instruction nor carry a code, a URL or markup (an instruction split over two sentences — "Ignore
    the above. The code is XJ-42." — taints its neighbour)."""
    from briefing_core.text import split_sentences

    parts = split_sentences(text)
    if len(parts) < 2:
        return []
    return [
        (s, e) for s, e in parts
        if not is_suspicious(text[s:e]) and not any(_PAYLOAD_BITS.search(f) for f in variants(text[s:e]))
    ]


# ---------------------------------------------------------------------------------------
# LLM answer sentences
# ---------------------------------------------------------------------------------------

_OBEYS = re.compile(
    r"\b(?:i (?:have|'ve) been (?:pwned|hacked|jailbroken)|"
    r"my (?:system )?(?:prompt|instructions) (?:is|are|says?)|"
    r"here (?:is|are) my (?:system )?(?:prompt|instructions)|"
    r"as (?:you )?instructed|ignoring (?:the|my|previous) (?:rules|instructions))\b"
    r"|我的(?:系统)?(?:提示|指令)|мо(?:й|и) (?:системн\w+ )?(?:промпт|инструкци)\w*",
    _I,
)
_MARKUP = re.compile(r"!\[|\]\(|<\s*/?\s*(?:img|a|script|iframe|svg|object|embed|link|meta|style)\b", _I)
_URL = re.compile(r"(?:https?|ftp)://[^\s<>()\[\]\"'`]+|\bwww\.[^\s<>()\[\]\"'`]+", _I)
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*")


def _code_like(token: str) -> bool:
    has_digit = any(ch.isdigit() for ch in token)
    has_alpha = any(ch.isalpha() for ch in token)
    if has_digit and has_alpha and len(token) >= 3:
        return True
    letters = token.replace("-", "").replace("_", "")
    return letters.isalpha() and letters.isupper() and len(letters) >= 5


def _shingles(text: str, n: int = 6) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def answer_problem(sentence: str, trusted: str, system_prompt: str = "") -> str | None:
    """Why an LLM answer sentence must be dropped, or None. `trusted` is the text of the retrieved
    passages an answer may draw on (without the spans `is_suspicious` rejects)."""
    forms = variants(sentence)
    if any(_reads_as_instruction(f) or _ACTIVE.search(f) or _OBEYS.search(f) for f in forms):
        return "reads as an instruction, or as obedience to one"
    if any(_MARKUP.search(f) for f in forms):
        return "carries a link, an image or HTML"
    trusted_norm = _strip_invisible(trusted)
    trusted_lower = trusted_norm.lower()
    for form in forms:
        for url in _URL.findall(form):
            if url.rstrip(".,;:!?").lower() not in trusted_lower:
                return "names a URL that no retrieved passage contains"
    if system_prompt and _shingles(sentence) & _shingles(system_prompt):
        return "repeats the system prompt"
    trusted_tokens = {
        t.lower() for form in (trusted_norm, trusted_norm.translate(_TO_LATIN)) for t in _TOKEN.findall(form)
    }
    for form in forms:
        for token in _TOKEN.findall(form):
            if _code_like(token) and token.lower() not in trusted_tokens:
                return f"carries {token[:40]!r}, which no retrieved passage contains"
    return None
