"""Student-controlled text made inert wherever it is shown: Markdown, HTML, plain text (Gradescope, CSV, terminal).

Everything a submission controls (exception messages, layer class names, History values, file and folder
names, progress lines) is hostile: it may carry Markdown links and images, raw HTML, or terminal escape
sequences (clear screen, a fake "Score 100 / 100", OSC-8 hyperlinks). These functions are the only way such
text reaches a report:

* ``plain(text)``: control characters removed (ESC, C0 but tab and newline, DEL, C1, zero-width and
  bidirectional overrides), for the terminal, CSV files and Gradescope's plain-text fields;
* ``inert(text)``: one line of ``plain`` text as a Markdown code span, which nothing renders;
* ``markdown(message)``: a grader message (prose with code spans) made safe as a whole: outside its code
  spans, every character that could start Markdown or HTML structure is escaped and URLs become code, so even
  student text a grader forgot to wrap cannot render live;
* ``html_text(message)``: escaped for HTML.

Example:
    >>> inert("![x](https://evil.example/p.png)")
    '`![x](https://evil.example/p.png)`'
    >>> plain("ok\\x1b[2J")
    'ok[2J'
"""

from __future__ import annotations

import html
import re

# C0 controls except tab (\x09) and newline (\x0a), DEL, C1 (which includes the 8-bit CSI \x9b), zero-width
# characters, bidirectional embeddings/overrides/isolates (they reorder what a reader sees), the BOM.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064"
                     "\u2066-\u206f\ufeff\ufff9-\ufffb]")
# Characters that can start Markdown (CommonMark + GFM) or HTML structure inside a line of prose.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]{}<>()#+!|~&])")
URL = re.compile(r"(?:\b(?:[a-z][a-z0-9+.-]{1,15}):/{1,3}|\bwww\.|\bmailto:)\S+", re.I)
BACKTICKS = re.compile(r"`+")
INTRAWORD_UNDERSCORE = re.compile(r"(?<=[A-Za-z0-9])\\_(?=[A-Za-z0-9])")


def plain(text, *, limit: int | None = None) -> str:
    """``text`` as a string without control characters (tabs become spaces); at most ``limit`` characters."""
    try:
        value = str(text)
    except Exception:  # a hostile __str__
        value = "<unprintable>"
    value = CONTROL.sub("", value.replace("\t", " ").replace("\r\n", "\n").replace("\r", "\n"))
    if limit is not None and len(value) > limit:
        value = value[:limit] + "..."
    return value


def one_line(text, *, limit: int | None = None) -> str:
    """``plain`` text with every run of whitespace (newlines included) as one space."""
    return " ".join(plain(text, limit=limit).split())


def inert(text) -> str:
    """Student-controlled text as a one-line Markdown code span: nothing in it renders (no link, image,
    heading or HTML), whatever backticks it holds."""
    value = one_line(text)
    longest = max((len(run) for run in BACKTICKS.findall(value)), default=0)
    fence, pad = "`" * (longest + 1), " " if value[:1] == "`" or value[-1:] == "`" else ""
    return f"{fence}{pad}{value}{pad}{fence}" if value else "``"


def _split_code_spans(text: str) -> list[tuple[bool, str]]:
    """CommonMark code spans: a run of n backticks up to the next run of exactly n. Returns (is_code, part)."""
    parts, position, start = [], 0, 0
    while True:
        opening = BACKTICKS.search(text, position)
        if opening is None:
            break
        closing = None
        for candidate in BACKTICKS.finditer(text, opening.end()):
            if len(candidate.group()) == len(opening.group()):
                closing = candidate
                break
        if closing is None:
            position = opening.end()  # an unmatched run is literal text
            continue
        parts.append((False, text[start:opening.start()]))
        parts.append((True, text[opening.start():closing.end()]))
        start = position = closing.end()
    parts.append((False, text[start:]))
    return [(code, part) for code, part in parts if part]


def _escape(text: str) -> str:
    escaped = MARKDOWN_SPECIAL.sub(r"\\\1", text)
    # An underscore between two word characters (snake_case) can never start emphasis in CommonMark: keep it
    # readable in the raw file.
    return INTRAWORD_UNDERSCORE.sub("_", escaped)


def _escape_prose(part: str) -> str:
    pieces, position = [], 0
    for match in URL.finditer(part):  # bare URLs would be autolinked by GFM viewers: show them as code
        pieces.append(_escape(part[position:match.start()]))
        pieces.append(inert(match.group()))
        position = match.end()
    pieces.append(_escape(part[position:]))
    return "".join(pieces)


def markdown(message) -> str:
    """A grader message for a Markdown file: code spans kept (they are literal), everything else escaped.

    Newlines in the message become spaces, so no line of it can start a heading, list, quote or table.
    """
    text = one_line(message)
    rendered = []
    for is_code, part in _split_code_spans(text):
        if is_code:
            rendered.append(part.replace("\n", " "))
        else:
            rendered.append(_escape_prose(part))
    return "".join(rendered)


def html_text(message) -> str:
    """A message (or any student text) for an HTML page: control characters removed, everything escaped."""
    return html.escape(plain(message), quote=True)
