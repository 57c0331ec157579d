"""Plain-Python handling of text for the built-in engines: tokens, sentences, clauses, the blocks
of a prompt, and the small word helpers (lemma, plurals, title case) the engines write with."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from taskapi.engines.language import wordset

_ABBREVIATIONS = wordset("e.g i.e etc vs mr mrs ms dr prof st fig no nos approx cf al ca jr sr inc ltd co dept est")

_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*%?|[^\W\d_][\w]*(?:['’-][^\W_]+)*")
_BOUNDARY = re.compile(r"([.!?…]+)([\"'”’)\]]*)(\s+)")
_WORD_BEFORE = re.compile(r"([^\W\d_]+(?:\.[^\W\d_]+)*)$")
_BULLET = re.compile(r"^(?:[-*•‣▪]|\d{1,3}[.)])\s+")
_HEADING = re.compile(r"^#{1,6}\s+")
_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+|\s+[—–]\s+|\s+-\s+")
_SPACES = re.compile(r"\s+")
_TITLE_SMALL = wordset("a an and as at but by for in nor of on or the to vs via with")


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int
    lemma: str
    initial: bool
    """First word of its sentence (so a capital letter says nothing about a name)."""


@dataclass
class Sentence:
    index: int
    paragraph: int
    text: str
    tokens: list[Token]
    heading: bool = False
    instruction: bool = False
    focus_start: int = 0
    """Character offset where content starts: after "Create a video about" in an instruction."""
    term_spans: list[tuple[str, int, int]] = field(default_factory=list)
    """(term key, first token index, last token index) of every key-term occurrence, in order."""
    roles: dict[int, str] = field(default_factory=dict)
    """Guessed part of speech of each key-word token here ("head", "modifier", "verb"), by index."""

    @property
    def word_count(self) -> int:
        return len(self.tokens)

    def term_keys(self) -> list[str]:
        return list(dict.fromkeys(key for key, _, _ in self.term_spans))


def normalize_space(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def words(text: str) -> list[str]:
    return [m.group(0) for m in _TOKEN.finditer(text)]


def word_count(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


def lemma(word: str) -> str:
    """A crude English singular, used only to group forms ("triangles" with "triangle")."""
    lower = word.lower()
    if len(lower) <= 3 or lower[-1] != "s" or lower[0].isdigit():
        return lower
    if lower.endswith("ies") and len(lower) > 4:
        return lower[:-3] + "y"
    if lower.endswith(("sses", "ches", "shes", "xes", "zzes")):
        return lower[:-2]
    if lower.endswith(("ss", "us", "is", "'s", "’s")):
        return lower[:-2] if lower.endswith(("'s", "’s")) else lower
    return lower[:-1]


def looks_plural(form: str) -> bool:
    last = form.split()[-1].lower() if form.split() else form.lower()
    return len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is"))


def title_case(text: str) -> str:
    out = []
    for position, word in enumerate(text.split()):
        if position > 0 and word.lower() in _TITLE_SMALL:
            out.append(word.lower())
        elif word[:1].islower():
            out.append(word[:1].upper() + word[1:])
        else:
            out.append(word)
    return " ".join(out)


def capitalize_first(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def ensure_period(text: str) -> str:
    text = text.rstrip()
    return text if not text or text[-1] in ".!?…:" else text + "."


def tokenize(text: str) -> list[Token]:
    tokens = []
    for position, match in enumerate(_TOKEN.finditer(text)):
        word = match.group(0)
        tokens.append(Token(word, match.start(), match.end(), lemma(word), position == 0))
    return tokens


def split_sentences(block: str) -> list[str]:
    """Split one block of running text into sentences, keeping abbreviations and initials whole."""
    sentences = []
    start = 0
    for match in _BOUNDARY.finditer(block):
        following = block[match.end() : match.end() + 1]
        if following and following.islower():
            continue
        if match.group(1) == ".":
            before = _WORD_BEFORE.search(block[start : match.start(1)])
            if before is not None:
                word = before.group(1)
                if word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper()):
                    continue
        sentence = block[start : match.end(2)].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    tail = block[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def split_clauses(text: str, min_words: int = 3) -> list[str]:
    """Break a sentence at commas, semicolons, colons and dashes; a piece shorter than min_words
    ("First,", "then,") joins the piece after it (the one before, at the end), so that every piece
    still reads as a phrase."""
    pieces = [p.strip() for p in _CLAUSE_BREAK.split(text) if p.strip()]
    merged: list[str] = []
    carry = ""
    for piece in pieces:
        piece = f"{carry} {piece}" if carry else piece
        carry = ""
        if word_count(piece) < min_words:
            carry = piece
            continue
        merged.append(piece)
    if carry:
        if merged:
            merged[-1] = f"{merged[-1]} {carry}"
        else:
            merged.append(carry)
    return merged or [text]


def split_words_evenly(text: str, parts: int) -> list[str]:
    """Cut text into `parts` runs of whole words of nearly equal length (at least one word each)."""
    tokens = text.split()
    parts = max(1, min(parts, len(tokens)))
    size, extra = divmod(len(tokens), parts)
    out, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        out.append(" ".join(tokens[start:end]))
        start = end
    return out


def split_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(paragraph, text, is_heading) runs: blank lines end a paragraph; bullets and headings start a
    block of their own; hard-wrapped lines are joined back."""
    blocks: list[tuple[int, str, bool]] = []
    paragraph = 0
    current: list[str] = []
    current_heading = False

    def close() -> None:
        nonlocal current, current_heading
        if current:
            blocks.append((paragraph, normalize_space(" ".join(current)), current_heading))
        current, current_heading = [], False

    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        if not line:
            close()
            if blocks and blocks[-1][0] == paragraph:
                paragraph += 1
            continue
        heading = bool(_HEADING.match(line))
        bullet = bool(_BULLET.match(line))
        line = _BULLET.sub("", _HEADING.sub("", line)).strip()
        if not line:
            continue
        if heading or bullet or current_heading or (current and current[-1][-1:] in ".!?…:"):
            close()
        current.append(line)
        current_heading = heading
    close()
    return blocks
