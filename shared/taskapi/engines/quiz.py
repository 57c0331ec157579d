"""Quiz engine: multiple-choice cloze questions and true/false statements drawn from the prompt.

Every question comes from one sentence of the prompt. A multiple-choice question blanks a key term
of that sentence and offers three distractors: other key terms of the same text, of the same kind
where possible (numbers for a number, names for a name). A false statement swaps a key term for
another term of the text; a true statement is the sentence itself.

Difficulty changes two real things:
- which term is asked about: easy takes the most salient terms (frequent, long, repeated phrases),
  hard the least salient ones, medium the middle of the ranking;
- how close the distractors (or the swapped-in term) are to the answer: hard picks the most similar
  (same kind, same number, similar length and ending), easy the least similar.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskapi.engines.analysis import Analysis, analyse
from taskapi.engines.base import Artifact, ArtifactFile, EngineError, ProgressCallback
from taskapi.engines.formats import JSON, MARKDOWN, json_bytes, md_escape
from taskapi.engines.inputs import language_of, parse_request
from taskapi.engines.terms import Term
from taskapi.engines.text import Sentence, capitalize_first, looks_plural
from taskapi.models.domain import TaskType
from taskapi.models.requests import DEFAULT_NUM_QUESTIONS, QUESTION_TYPES, QuizRequestData

MULTIPLE_CHOICE = "multiple_choice"
TRUE_FALSE = "true_false"
BLANK = "____"
DISTRACTORS = 3
MIN_SENTENCE_WORDS = 4
"""Shorter fragments ("Right triangles.") make neither a fair cloze nor a statement."""

_TARGET = {"easy": 0.0, "medium": 0.5, "hard": 1.0}
"""Where on the salience ranking (0 = most salient) each difficulty looks for its terms."""
_ASKABLE = {
    "easy": ("phrase", "name", "noun", "number"),
    "medium": ("phrase", "name", "noun", "number"),
    "hard": ("phrase", "name", "noun", "number", "modifier"),
}
"""Term groups a question may ask about: nouns and names; adjectives ("longest") only when hard."""
_STAND_INS = {
    "phrase": ("phrase", "noun", "name"),
    "noun": ("noun", "phrase", "name"),
    "name": ("name", "noun", "phrase"),
    "number": ("number",),
    "modifier": ("modifier",),
}
"""Groups a distractor may come from, preferred first: a number is only ever offered against
numbers, an adjective against adjectives, never a verb against a noun."""


@dataclass(frozen=True)
class Question:
    type: str
    question: str
    answer: str | bool
    source_sentence: str
    sentence_index: int
    term: str
    options: tuple[str, ...] | None = None

    def to_json(self, number: int) -> dict[str, Any]:
        document: dict[str, Any] = {"id": f"q{number}", "type": self.type, "question": self.question}
        if self.options is not None:
            document["options"] = list(self.options)
        document["answer"] = self.answer
        document["source_sentence"] = self.source_sentence
        return document


@dataclass(frozen=True)
class _Candidate:
    sentence: Sentence
    term: Term
    truth: bool | None = None
    """For true/false candidates: True is the sentence as written, False a swapped statement."""


class QuizEngine:
    task_type = TaskType.QUIZ

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        data = parse_request(QuizRequestData, request_data)
        language = language_of(data.language)
        requested = data.num_questions or DEFAULT_NUM_QUESTIONS[data.difficulty]
        types = [kind for kind in QUESTION_TYPES if kind in (data.question_types or QUESTION_TYPES)]

        progress(10, "Reading the prompt")
        analysis = analyse(data.story_prompt, language)
        seed = _seed(data.story_prompt, data.difficulty, requested, types)

        progress(30, "Choosing key terms")
        writer = _QuestionWriter(analysis, data.difficulty, random.Random(seed))  # noqa: S311 - not crypto

        progress(50, f"Drafting {requested} questions")
        questions = writer.write(requested, types)
        if not questions:
            raise EngineError(
                f"the prompt has too little text to draw any {' or '.join(types)} question from "
                f"({len(analysis.content_sentences)} usable sentences, {len(analysis.terms)} key terms)",
                permanent=True,
            )

        progress(85, "Writing quiz files")
        counts = {kind: sum(1 for q in questions if q.type == kind) for kind in types}
        document = {
            "title": analysis.title,
            "language": language,
            "difficulty": data.difficulty,
            "question_types": types,
            "questions": [q.to_json(n) for n, q in enumerate(questions, start=1)],
        }
        summary: dict[str, Any] = {
            "title": analysis.title,
            "difficulty": data.difficulty,
            "requested_questions": requested,
            "produced_questions": len(questions),
            "question_types": counts,
            "source_sentences": len({q.sentence_index for q in questions}),
        }
        if len(questions) < requested:
            summary["note"] = (
                f"the prompt yields {len(questions)} distinct questions of the requested types; "
                f"{requested} were requested"
            )
        return Artifact(
            files=(
                ArtifactFile("quiz.json", JSON, json_bytes(document)),
                ArtifactFile("quiz.md", MARKDOWN, _markdown(document)),
            ),
            primary="quiz.json",
            summary=summary,
        )


def _seed(prompt: str, difficulty: str, requested: int, types: list[str]) -> int:
    material = json.dumps([prompt, difficulty, requested, types], ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big")


class _QuestionWriter:
    def __init__(self, analysis: Analysis, difficulty: str, rng: random.Random) -> None:
        self.analysis = analysis
        self.difficulty = difficulty
        self.rng = rng
        self.sentences = [s for s in analysis.content_sentences if s.word_count >= MIN_SENTENCE_WORDS]
        self.known_statements = {_normal(s.text) for s in analysis.sentences}
        askable = [t for t in analysis.ranked if t.group in _ASKABLE[difficulty]]
        last = max(len(askable) - 1, 1)
        self.percentile = {term.key: position / last for position, term in enumerate(askable)}

    # -- selection -----------------------------------------------------------------------------

    def write(self, requested: int, types: list[str]) -> list[Question]:
        """Alternate the requested types, spreading questions over as many sentences as possible and
        never asking the same thing twice; a type that runs out leaves its turns to the others."""
        pools = {kind: self._candidates(kind) for kind in types}
        truths = self._truth_plan(requested if types == [TRUE_FALSE] else requested // 2)
        uses: dict[int, int] = {}
        asked: set[str] = set()
        taken: set[tuple[int, str]] = set()
        used_by: dict[str, set[int]] = {kind: set() for kind in QUESTION_TYPES}
        chosen: list[Question] = []
        turn = 0
        while len(chosen) < requested and any(pools.values()):
            kind = types[turn % len(types)]
            turn += 1
            if not pools[kind]:
                continue
            want = truths[len([q for q in chosen if q.type == TRUE_FALSE]) % len(truths)] if truths else None
            truth = want if kind == TRUE_FALSE else None
            other = set().union(*(used_by[k] for k in QUESTION_TYPES if k != kind))
            question = self._next(kind, pools[kind], uses, asked, taken, truth, other)
            if question is None:
                continue
            chosen.append(question)
            asked.add(_normal(question.question))
            taken.add((question.sentence_index, question.term))
            used_by[kind].add(question.sentence_index)
            uses[question.sentence_index] = uses.get(question.sentence_index, 0) + 1
        return sorted(chosen, key=lambda q: (q.sentence_index, q.type, q.term))

    def _truth_plan(self, count: int) -> list[bool]:
        plan = [index % 2 == 0 for index in range(max(count, 1))]
        self.rng.shuffle(plan)
        return plan

    def _candidates(self, kind: str) -> list[_Candidate]:
        """Every (sentence, term) pair, best for this difficulty first."""
        scored: list[tuple[float, int, int, _Candidate]] = []
        target = _TARGET[self.difficulty]
        for sentence in self.sentences:
            keys = [key for key in sentence.term_keys() if key in self.percentile]
            for position, key in enumerate(keys):
                term = self.analysis.terms[key]
                closeness = abs(self.percentile[key] - target)
                if kind == TRUE_FALSE:
                    scored.append((closeness, sentence.index, position, _Candidate(sentence, term, False)))
                else:
                    scored.append((closeness, sentence.index, position, _Candidate(sentence, term)))
            if kind == TRUE_FALSE and keys:
                best = min(keys, key=lambda k: abs(self.percentile[k] - target))
                scored.append((0.0, sentence.index, -1, _Candidate(sentence, self.analysis.terms[best], True)))
        scored.sort(key=lambda item: item[:3])
        return [item[3] for item in scored]

    def _next(
        self,
        kind: str,
        pool: list[_Candidate],
        uses: dict[int, int],
        asked: set[str],
        taken: set[tuple[int, str]],
        truth: bool | None,
        other_type: set[int],
    ) -> Question | None:

        def giveaway(candidate: _Candidate) -> int:
            """A cloze next to a statement about the same sentence shows the answer of one of them."""
            return 1 if candidate.sentence.index in other_type else 0

        # Least-used sentence first, then no giveaways, then the pool's own order (difficulty fit).
        # The ranking cannot change while one question is being chosen, so it is computed once.
        def rank(item: tuple[int, _Candidate]) -> tuple[int, int, int, int]:
            index, candidate = item
            mismatch = 0 if truth is None or candidate.truth is truth else 1
            return (uses.get(candidate.sentence.index, 0), giveaway(candidate), mismatch, index)

        tried: list[int] = []
        found: Question | None = None
        for position, candidate in sorted(enumerate(pool), key=rank):
            tried.append(position)
            if (candidate.sentence.index, candidate.term.key) in taken and candidate.truth is not True:
                continue
            if kind == MULTIPLE_CHOICE:
                question = self._multiple_choice(candidate)
            elif candidate.truth:
                question = self._true_statement(candidate)
            else:
                question = self._false_statement(candidate)
            if question is not None and _normal(question.question) not in asked:
                found = question
                break
        # Candidates tried once are spent, whether they made this question or could make none.
        for position in sorted(tried, reverse=True):
            del pool[position]
        return found

    # -- question forms ------------------------------------------------------------------------

    def _multiple_choice(self, candidate: _Candidate) -> Question | None:
        sentence, term = candidate.sentence, candidate.term
        spans = _spans_of(sentence, term.key)
        answer = _written(sentence, spans[0], self.analysis)
        at_start = _starts_sentence(sentence, spans[0])
        distractors = self._alternatives(sentence, term, looks_plural(answer), DISTRACTORS)
        if len(distractors) < DISTRACTORS:
            return None
        options = [answer, *distractors]
        if at_start:
            options = [capitalize_first(option) for option in options]
        if len({option.lower() for option in options}) != len(options):
            return None
        answer = options[0]
        self.rng.shuffle(options)
        return Question(
            type=MULTIPLE_CHOICE,
            question=_replace(sentence, spans, [BLANK] * len(spans)),
            answer=answer,
            source_sentence=sentence.text,
            sentence_index=sentence.index,
            term=term.key,
            options=tuple(options),
        )

    def _false_statement(self, candidate: _Candidate) -> Question | None:
        sentence, term = candidate.sentence, candidate.term
        spans = _spans_of(sentence, term.key)
        written = [_written(sentence, span, self.analysis) for span in spans]
        swaps = self._alternatives(sentence, term, looks_plural(written[0]), 1, raw=True)
        if not swaps:
            return None
        replacement = self.analysis.terms[swaps[0]]
        forms = []
        for span, original in zip(spans, written, strict=True):
            form = replacement.form_like(looks_plural(original))
            forms.append(capitalize_first(form) if _starts_sentence(sentence, span) else form)
        statement = _replace(sentence, spans, forms)
        if _normal(statement) in self.known_statements:
            return None
        return Question(TRUE_FALSE, statement, False, sentence.text, sentence.index, term.key)

    def _true_statement(self, candidate: _Candidate) -> Question:
        sentence = candidate.sentence
        return Question(TRUE_FALSE, sentence.text, True, sentence.text, sentence.index, "")

    def _alternatives(
        self, sentence: Sentence, term: Term, plural: bool, count: int, *, raw: bool = False
    ) -> list[str]:
        """Other terms of the text to offer instead of `term`, ordered for the difficulty: the most
        similar first for hard, the least similar first for easy. Terms visible in the sentence come
        last (they would give themselves away). Returns written forms, or term keys when raw."""
        parts = term.key.split()
        in_sentence: set[str] = set()
        for key in sentence.term_keys():
            in_sentence.update([key, *key.split()])
        scored: list[tuple[int, float, int, str, Term]] = []
        for other in self.analysis.ranked:
            other_parts = other.key.split()
            if other.key == term.key or any(p in parts for p in other_parts) or any(p in other_parts for p in parts):
                continue
            stand_ins = _STAND_INS[term.group]
            if other.group not in stand_ins:
                continue
            visible = other.key in in_sentence or any(p in in_sentence for p in other_parts)
            tier = (1 if visible else 0) * len(stand_ins) + stand_ins.index(other.group)
            scored.append((tier, _similarity(term, other, plural), other.first_sentence, other.key, other))
        if not scored:
            return []
        values = [item[1] for item in scored]
        middle = (max(values) + min(values)) / 2

        def order(item: tuple[int, float, int, str, Term]) -> tuple[int, float, int, str]:
            tier, similarity, first, key, _ = item
            if self.difficulty == "hard":
                return (tier, -similarity, first, key)
            if self.difficulty == "easy":
                return (tier, similarity, first, key)
            return (tier, abs(similarity - middle), first, key)

        scored.sort(key=order)
        chosen: list[str] = []
        seen = {term.display.lower()}
        for item in scored:
            other = item[4]
            form = other.form_like(plural)
            if form.lower() in seen:
                continue
            seen.add(form.lower())
            chosen.append(other.key if raw else form)
            if len(chosen) == count:
                break
        return chosen


def _similarity(term: Term, other: Term, plural: bool) -> float:
    a, b = term.display.lower(), other.form_like(plural).lower()
    score = 1.0 if looks_plural(b) == plural else 0.0
    score += 1.0 - min(1.0, abs(len(a) - len(b)) / max(len(a), len(b)))
    score += 0.5 if a[-3:] == b[-3:] else 0.0
    score += 0.5 if abs(other.salience - term.salience) <= 2.0 else 0.0
    return round(score, 6)


def _spans_of(sentence: Sentence, key: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for span_key, first, last in sentence.term_spans:
        if span_key == key and not any(first <= s_last and last >= s_first for s_first, s_last in spans):
            spans.append((first, last))
    return spans


def _written(sentence: Sentence, span: tuple[int, int], analysis: Analysis) -> str:
    """The term as written in this sentence: lower case unless a name or an acronym."""
    words = []
    for token in sentence.tokens[span[0] : span[1] + 1]:
        single = analysis.terms.get(token.lemma)
        keep = (single is not None and single.kind == "name") or (token.text.isupper() and len(token.text) > 1)
        words.append(token.text if keep else token.text.lower())
    return " ".join(words)


def _starts_sentence(sentence: Sentence, span: tuple[int, int]) -> bool:
    return span[0] == 0 and not sentence.text[: sentence.tokens[0].start].strip("\"'“‘([ ")


def _replace(sentence: Sentence, spans: list[tuple[int, int]], replacements: list[str]) -> str:
    text = sentence.text
    for (first, last), replacement in sorted(zip(spans, replacements, strict=True), reverse=True):
        text = text[: sentence.tokens[first].start] + replacement + text[sentence.tokens[last].end :]
    return text


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _markdown(document: dict[str, Any]) -> bytes:
    lines = [
        f"# {md_escape(document['title'])}",
        "",
        f"Difficulty: {document['difficulty']} · {len(document['questions'])} questions · {document['language']}",
        "",
        "## Questions",
        "",
    ]
    for number, question in enumerate(document["questions"], start=1):
        prefix = "True or false: " if question["type"] == TRUE_FALSE else ""
        lines.append(f"{number}. {prefix}{md_escape(question['question'])}")
        for letter, option in zip("ABCD", question.get("options", []), strict=False):
            lines.append(f"   - {letter}) {md_escape(option)}")
        lines.append("")
    lines += ["## Answer key", ""]
    for number, question in enumerate(document["questions"], start=1):
        answer = question["answer"]
        if isinstance(answer, bool):
            shown = "True" if answer else "False"
        else:
            letter = "ABCD"[question["options"].index(answer)]
            shown = f"{letter}) {md_escape(answer)}"
        lines.append(f"{number}. {shown} — {md_escape(question['source_sentence'])}")
    return ("\n".join(lines) + "\n").encode()
