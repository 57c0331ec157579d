"""Narration planning shared by the video and animated-lesson engines: turn a prompt into exactly N
non-empty narration blocks, in the prompt's order.

The prompt's own sentences come first. When there are more sentences than blocks, neighbours are
grouped with balanced word counts. When there are fewer, sentences are split at clause boundaries,
then framing is added (an introduction, a review of key terms, a recap), then long blocks are split
between words, and only as a last resort is earlier narration revisited. Framing phrases exist in
English only; for other languages the framing repeats the prompt's own words.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskapi.engines.analysis import Analysis
from taskapi.engines.text import (
    capitalize_first,
    ensure_period,
    split_clauses,
    split_words_evenly,
    word_count,
)

MAX_UNIT_WORDS = 30
"""A sentence longer than this is narrated over more than one block when the plan is free."""


@dataclass(frozen=True)
class Unit:
    text: str
    role: str
    """"intro", "prompt", "topic", "review" or "recap"."""
    sentences: tuple[int, ...] = ()
    """Indexes of the prompt sentences the text comes from."""
    focus: str | None = None
    """The term or topic this unit is about, when it is about one (topics, reviews)."""

    @property
    def words(self) -> int:
        return word_count(self.text)


@dataclass(frozen=True)
class Block:
    units: tuple[Unit, ...]

    @property
    def text(self) -> str:
        return " ".join(unit.text for unit in self.units)

    @property
    def words(self) -> int:
        return word_count(self.text)

    @property
    def sentences(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(i for unit in self.units for i in unit.sentences))

    @property
    def role(self) -> str:
        return self.units[0].role if len({u.role for u in self.units}) == 1 else "prompt"

    @property
    def focus(self) -> list[str]:
        return list(dict.fromkeys(u.focus for u in self.units if u.focus))


class Narrator:
    """Framing sentences for one medium ("video", "lesson") in one language."""

    def __init__(self, analysis: Analysis, medium: str, english: bool) -> None:
        self.analysis = analysis
        self.medium = medium
        self.english = english

    def intro(self) -> Unit:
        subject = self.analysis.subject_phrase
        if self.english:
            return Unit(f"Welcome! In this {self.medium}, we explore {subject}.", "intro")
        return Unit(ensure_period(capitalize_first(subject)), "intro")

    def topic(self, topic: str, position: int) -> Unit:
        if not self.english:
            return Unit(ensure_period(capitalize_first(topic)), "topic", focus=topic)
        forms = ("Let us start with {}.", "Next, let us look at {}.", "Now we turn to {}.", "Let us look at {}.")
        return Unit(forms[min(position, len(forms) - 1)].format(topic), "topic", focus=topic)

    def recap(self) -> Unit:
        topics = self.analysis.topics or [t.display for t in self.analysis.top_terms(3)]
        if self.english:
            return Unit(f"To sum up, we looked at {_and_list(topics) or self.analysis.subject_phrase}.", "recap")
        key = self.analysis.key_sentences(1)
        if key:
            return Unit(key[0].text, "recap", (key[0].index,))
        return Unit(ensure_period(capitalize_first(", ".join(topics) or self.analysis.subject_phrase)), "recap")

    def reviews(self) -> list[Unit]:
        """One review per key term, quoting a sentence that uses it (a different one each time when
        the prompt allows)."""
        units = []
        quoted: list[int] = []
        for term in self.analysis.top_terms(12):
            using = [s for s in self.analysis.content_sentences if term.key in s.term_keys()]
            if not using:
                continue
            sentence = next((s for s in using if s.index not in quoted), using[0])
            quoted.append(sentence.index)
            text = f"Key term: {term.display}. {sentence.text}" if self.english else sentence.text
            units.append(Unit(ensure_period(text), "review", (sentence.index,), focus=term.display))
        return units

    def again(self, unit: Unit) -> Unit:
        text = f"Remember: {unit.text}" if self.english and unit.role == "prompt" else unit.text
        return Unit(text, "review", unit.sentences, unit.focus)


def natural_units(analysis: Analysis, narrator: Narrator) -> list[Unit]:
    """The plan with no count imposed: one block per sentence (long ones split), plus an introduction
    for an instruction prompt and, when it has nothing but the instruction, one block per topic."""
    units: list[Unit] = []
    if analysis.subject:
        units.append(narrator.intro())
    for sentence in analysis.content_sentences:
        if sentence.word_count <= MAX_UNIT_WORDS:
            units.append(Unit(sentence.text, "prompt", (sentence.index,)))
            continue
        pieces = _fit_pieces(split_clauses(sentence.text), MAX_UNIT_WORDS)
        units.extend(Unit(piece, "prompt", (sentence.index,)) for piece in pieces)
    if not analysis.content_sentences:
        units.extend(narrator.topic(topic, i) for i, topic in enumerate(analysis.topics))
        if analysis.topics:
            units.append(narrator.recap())
    if not units:
        units.append(Unit(ensure_period(capitalize_first(analysis.text.strip())), "prompt"))
    return units


def plan(analysis: Analysis, narrator: Narrator, count: int) -> list[Block]:
    """Exactly `count` blocks (count ≥ 1), each with some narration."""
    units = natural_units(analysis, narrator)
    if len(units) >= count:
        return _group(units, count)
    units = _split_clauses_until(units, count)
    if len(units) < count:
        units = _add_framing(units, narrator, count)
    units = _split_words_until(units, count)
    position = 0
    originals = [u for u in units if u.role == "prompt"] or list(units)
    while len(units) < count:
        units.insert(len(units) - (1 if units[-1].role == "recap" else 0), narrator.again(originals[position]))
        position = (position + 1) % len(originals)
    return [Block((unit,)) for unit in units]


def framed_plan(analysis: Analysis, narrator: Narrator, max_blocks: int) -> list[Block]:
    """An introduction, the prompt's own blocks (grouped if there are more than max_blocks - 2), a
    recap: the shape of a lesson, whatever the prompt."""
    units = natural_units(analysis, narrator)
    intro = units.pop(0) if units and units[0].role == "intro" else narrator.intro()
    recap = units.pop() if units and units[-1].role == "recap" else narrator.recap()
    middle = _group(units, min(len(units), max(max_blocks - 2, 1))) if units else []
    return [Block((intro,)), *middle, Block((recap,))]


def block_terms(analysis: Analysis, block: Block, limit: int = 3) -> list[str]:
    """Labels of the block's key terms: its own focus first (a topic, a reviewed term), then the most
    salient nouns, names and phrases it uses, a word inside an already listed phrase left out."""
    used = analysis.terms_in(block.text)
    preferred = [t for t in used if t.group in _NOUNISH] + [t for t in used if t.group not in _NOUNISH]
    labels = list(block.focus)
    if block.role == "recap" and analysis.topics:
        labels += analysis.topics
    covered: list[str] = []
    for term in preferred:
        if any(part in covered for part in term.key.split()):
            continue
        labels.append(term.label)
        covered.extend(term.key.split())
    return list(dict.fromkeys(labels))[:limit]


def block_heading(analysis: Analysis, block: Block, terms: list[str], english: bool) -> str:
    """A short on-screen heading: the title for the introduction, else the block's main key term."""
    if block.role == "intro" or not terms:
        return analysis.title
    if block.role == "recap" and english:
        return "Recap"
    return capitalize_first(terms[0])


_NOUNISH = ("phrase", "name", "noun", "number")


def _group(units: list[Unit], count: int) -> list[Block]:
    """Contiguous groups with word totals as even as the order allows (never an empty group)."""
    cumulative = [0]
    for unit in units:
        cumulative.append(cumulative[-1] + max(unit.words, 1))
    total = cumulative[-1]
    bounds = [0]
    for k in range(1, count):
        ideal = total * k / count
        low, high = bounds[-1] + 1, len(units) - (count - k)
        best = min(range(low, high + 1), key=lambda i: (abs(cumulative[i] - ideal), i))
        bounds.append(best)
    bounds.append(len(units))
    return [Block(tuple(units[bounds[k] : bounds[k + 1]])) for k in range(count)]


def _split_clauses_until(units: list[Unit], count: int) -> list[Unit]:
    units = list(units)
    while len(units) < count:
        splittable = [
            (unit.words, -index, index, pieces)
            for index, unit in enumerate(units)
            if unit.role == "prompt" and len(pieces := split_clauses(unit.text)) > 1
        ]
        if not splittable:
            break
        _, _, index, pieces = max(splittable)
        halves = _halves(pieces)
        unit = units[index]
        units[index : index + 1] = [Unit(half, unit.role, unit.sentences, unit.focus) for half in halves]
    return units


def _split_words_until(units: list[Unit], count: int, min_words: int = 2) -> list[Unit]:
    units = list(units)
    while len(units) < count:
        splittable = [(unit.words, -index, index) for index, unit in enumerate(units) if unit.words >= 2 * min_words]
        if not splittable:
            break
        _, _, index = max(splittable)
        unit = units[index]
        parts = split_words_evenly(unit.text, 2)
        units[index : index + 1] = [Unit(part, unit.role, unit.sentences, unit.focus) for part in parts]
    return units


def _add_framing(units: list[Unit], narrator: Narrator, count: int) -> list[Unit]:
    head = [] if units and units[0].role == "intro" else [narrator.intro()]
    tail = [] if units and units[-1].role == "recap" else [narrator.recap()]
    middle = narrator.reviews() if units and any(u.role == "prompt" for u in units) else []
    if not any(u.role == "topic" for u in units):
        middle = [narrator.topic(t, i) for i, t in enumerate(narrator.analysis.topics)] + middle
    extra = head + tail + middle
    room = count - len(units)
    chosen = extra[:room]
    return (
        [u for u in chosen if u in head]
        + units
        + [u for u in chosen if u not in head and u not in tail]
        + [u for u in chosen if u in tail]
    )


def _halves(pieces: list[str]) -> list[str]:
    """Join clause pieces into two runs, cutting at the clause boundary nearest the middle."""
    total = sum(word_count(p) for p in pieces)
    running, best_cut, best_gap = 0, 1, float("inf")
    for cut in range(1, len(pieces)):
        running += word_count(pieces[cut - 1])
        gap = abs(total / 2 - running)
        if gap < best_gap:
            best_cut, best_gap = cut, gap
    return [" ".join(pieces[:best_cut]), " ".join(pieces[best_cut:])]


def _fit_pieces(pieces: list[str], limit: int) -> list[str]:
    """Merge neighbouring clauses while they stay within `limit` words; cut any clause still longer."""
    merged: list[str] = []
    for piece in pieces:
        if merged and word_count(merged[-1]) + word_count(piece) <= limit:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    out: list[str] = []
    for piece in merged:
        words = word_count(piece)
        out.extend(split_words_evenly(piece, -(-words // limit)) if words > limit else [piece])
    return out


def _and_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"
