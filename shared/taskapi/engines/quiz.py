"""Quiz engine: multiple-choice cloze questions and true/false statements drawn from the prompt.

The built-in engine has no model: it only asks about sentences it is given. Every question comes from
one complete sentence of the prompt (one with a verb: a title such as "Pythagoras and right
triangles", a heading or a list item of a few nouns never carries a question). A multiple-choice
question blanks a key term of that sentence and offers three distractors; a false statement swaps a
key term for one other term of the text (everywhere it occurs in the sentence); a true statement is
the sentence itself. Distractors and swapped-in terms are always of the same kind as the term they
stand in for: a number for a number, a proper name for a proper name, a common noun or noun phrase
for a common noun or noun phrase, an adjective for an adjective; they agree with the sentence (same
number, "a"/"an", the determiners they were seen with in other languages). A word seen only with a
capital letter at the start of a sentence ("Pythagoras was …", "Builders use …") may be a name or a
common word: it is never asked about nor offered. When the prompt supports fewer questions than
requested the quiz has what it could make and the summary's `notes` say why; a prompt that supports
none is a permanent error that says to send the content itself or to configure a model.

Difficulty changes two real things:
- which term is asked about: easy takes the most salient terms (frequent, long, repeated phrases),
  hard the least salient ones, medium the middle of the ranking; hard may also ask about adjectives;
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

from taskapi.engines.analysis import Analysis, analyse, determiners, verb_positions
from taskapi.engines.base import Artifact, ArtifactFile, EngineError, ProgressCallback
from taskapi.engines.formats import JSON, MARKDOWN, json_bytes, quiz_markdown
from taskapi.engines.inputs import language_of, parse_request
from taskapi.engines.language import wordset
from taskapi.engines.terms import Term
from taskapi.engines.text import Sentence, capitalize_first, looks_plural
from taskapi.models.domain import TaskType
from taskapi.models.requests import DEFAULT_NUM_QUESTIONS, QUESTION_TYPES, QuizRequestData

MULTIPLE_CHOICE = "multiple_choice"
TRUE_FALSE = "true_false"
BLANK = "____"
DISTRACTORS = 3
MIN_SENTENCE_WORDS = 4
"""Shorter sentences ("Triangles have angles.") make neither a fair cloze nor a statement."""
PROVIDER_HINT = "configure a model provider (e.g. QuizProvider=bedrock)"

_TARGET = {"easy": 0.0, "medium": 0.5, "hard": 1.0}
"""Where on the salience ranking (0 = most salient) each difficulty looks for its terms."""
_ASKABLE = {
    "easy": ("common", "name", "number", "number-word", "name-unit"),
    "medium": ("common", "name", "number", "number-word", "name-unit"),
    "hard": ("common", "name", "number", "number-word", "name-unit", "modifier", "name-modifier"),
}
"""Kinds of term a question may ask about: nouns, names and numbers; adjectives only when hard."""
_NUMBER_WORDS = wordset(
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred thousand million"
)
_COPULAS = wordset("is are was were be been being am become becomes became remain remains seem seems very too so")
"""Before these a lone word is an adjective ("corners are square"), not the noun it may be elsewhere."""
_ARTICLES = {"a", "an"}
_INTRODUCERS = wordset(
    """of for in on at to from into with by through around across over under between during after before
    about as onto toward towards along against within without per like than"""
)
"""Prepositions: the word after one (adjectives aside) starts a noun phrase."""


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
        if not writer.sentences:
            raise EngineError(_no_sentence(analysis), permanent=True)

        progress(50, f"Drafting {requested} questions")
        questions = writer.write(requested, types)
        if not questions:
            count = len(writer.sentences)
            raise EngineError(
                "the built-in quiz engine only asks about sentences it is given, and none of this prompt's "
                f"{_sentences(count)} has a term it can ask about with another term of the same kind from the "
                f"text; send more of the content itself as story_prompt, or {PROVIDER_HINT}",
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
            summary["notes"] = _shortfall_notes(analysis, writer, questions, requested, counts)
        return Artifact(
            files=(
                ArtifactFile("quiz.json", JSON, json_bytes(document)),
                ArtifactFile("quiz.md", MARKDOWN, quiz_markdown(document)),
            ),
            primary="quiz.json",
            summary=summary,
        )


def _sentences(count: int) -> str:
    return "1 sentence" if count == 1 else f"{count} sentences"


def _no_sentence(analysis: Analysis) -> str:
    """Why a prompt supports no question at all, and what to do instead."""
    if analysis.subject and not analysis.content_sentences:
        what = "is an instruction that names a topic but gives no text about it"
    elif analysis.complete_sentences:
        what = f"has only sentences shorter than {MIN_SENTENCE_WORDS} words"
    else:
        what = "has no complete sentence to ask about (it reads as a topic or a title)"
    return (
        f"the built-in quiz engine only asks about sentences it is given, and this prompt {what}; "
        f"send the content itself as story_prompt, or {PROVIDER_HINT}"
    )


def _shortfall_notes(
    analysis: Analysis, writer: _QuestionWriter, questions: list[Question], requested: int, counts: dict[str, int]
) -> list[str]:
    usable = len(writer.sentences)
    are = "was" if requested == 1 else "were"
    made = "1 distinct question" if len(questions) == 1 else f"{len(questions)} distinct questions"
    notes = [
        f"The prompt has {_sentences(usable)} that can carry a question; {requested} {are} requested, and "
        f"{made} could be drawn from {'it' if usable == 1 else 'them'} without asking the same thing twice."
    ]
    skipped = len(analysis.content_sentences) - usable
    if skipped:
        lines = "1 line" if skipped == 1 else f"{skipped} lines"
        notes.append(
            f"{lines.capitalize()} of the prompt {'was' if skipped == 1 else 'were'} not used: the built-in engine "
            "asks only about complete sentences of at least four words in which it can find the verb (titles, "
            "headings and lists of terms have none)."
        )
    if counts.get(MULTIPLE_CHOICE) == 0:
        notes.append(
            "No multiple-choice question could be made: none of the terms asked about has three other terms "
            "of the same kind in the text to offer as choices."
        )
    if counts.get(TRUE_FALSE) == 0:
        notes.append("No true/false statement could be made from these sentences.")
    notes.append(f"For more questions, send more of the content itself as story_prompt, or {PROVIDER_HINT}.")
    return notes


def _seed(prompt: str, difficulty: str, requested: int, types: list[str]) -> int:
    material = json.dumps([prompt, difficulty, requested, types], ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big")


class _QuestionWriter:
    def __init__(self, analysis: Analysis, difficulty: str, rng: random.Random) -> None:
        self.analysis = analysis
        self.difficulty = difficulty
        self.rng = rng
        self.sentences = [s for s in analysis.complete_sentences if s.word_count >= MIN_SENTENCE_WORDS]
        self.known_statements = {_normal(s.text) for s in analysis.sentences}
        self.asked: set[str] = set()
        self._verb_cache: dict[int, set[int]] = {}
        self.kind_of = self._term_kinds()
        self.determiners = self._determiners_seen()
        askable = [t for t in analysis.ranked if self.kind_of.get(t.key) in _ASKABLE[difficulty]]
        last = max(len(askable) - 1, 1)
        self.percentile = {term.key: position / last for position, term in enumerate(askable)}

    # -- kinds of term -------------------------------------------------------------------------

    def _occurrence_kind(self, sentence: Sentence, first: int, last: int) -> str | None:
        """What one occurrence of a term is, in its sentence: "number" (figures), "number-word",
        "name", "name-modifier" ("Pythagorean theorem"), "name-unit" ("27 BC"), "common" (a noun or
        noun phrase introduced by a determiner, a number, a preposition or a verb, or the subject
        opening the sentence), "modifier" (an adjective between a determiner and a noun), or a kind
        no other term can stand in for ("verb", "predicate" as in "corners are square", "other").
        None when it cannot be told: a word seen only capitalised at the start of sentences
        ("Pythagoras …"), part of a longer name ("Mount Everest"), a noun after a comma or a bare
        noun next to another ("Roman engineers built roads, aqueducts and bridges" asks about none
        of them); in other languages than English, any word but a lone noun after a determiner."""
        tokens = sentence.tokens
        parts = [self.analysis.terms.get(token.lemma) for token in tokens[first : last + 1]]
        if any(part is None or part.capitalised for part in parts):
            return None
        words = [part for part in parts if part is not None]
        verbs = self._verbs(sentence)
        if any(index in verbs for index in range(first, last + 1)):
            return "verb"
        english = self.analysis.english
        numbers = [p.kind == "number" or p.key in _NUMBER_WORDS for p in words]
        if any(numbers):
            if first != last:
                return "other"
            # Figures stand in for figures, words for words ("two", never "two, 4 and 5").
            return "number" if words[0].kind == "number" else "number-word"
        if all(part.kind == "name" for part in words):
            if self._capital_next(sentence, first - 1, first) or self._capital_next(sentence, last + 1, last):
                return None
            if first == last and self._joined(sentence, first - 1, first) and tokens[first - 1].text[:1].isdigit():
                return "name-unit"  # "27 BC" stands in for "476 AD", never for "Rome"
            modifies = self._joined(sentence, last, last + 1) and self._common_word(sentence, last + 1)
            return "name-modifier" if modifies and first == last else "name"
        if not english:
            alone = not (self._joined(sentence, last, last + 1) and last + 1 in sentence.roles)
            return "common" if alone and self._determiner_before(sentence, first) else None
        previous = tokens[first - 1].text.lower() if self._joined(sentence, first - 1, first) else ""
        if first == last and previous in _COPULAS:
            return "predicate"
        if first == last and sentence.roles.get(first) == "modifier":
            is_adjective = (
                previous in determiners(self.analysis.language)
                and self._joined(sentence, first, first + 1)
                and self._common_word(sentence, first + 1)
            )
            return "modifier" if is_adjective else None
        if sentence.roles.get(last, "head") != "head":
            return "other"
        return "common" if self._introduced(sentence, first, last) else None

    def _verbs(self, sentence: Sentence) -> set[int]:
        if sentence.index not in self._verb_cache:
            self._verb_cache[sentence.index] = set(verb_positions(sentence, self.analysis.language))
        return self._verb_cache[sentence.index]

    @staticmethod
    def _joined(sentence: Sentence, left: int, right: int) -> bool:
        tokens = sentence.tokens
        return 0 <= left < right < len(tokens) and sentence.text[tokens[left].end : tokens[right].start] == " "

    def _common_word(self, sentence: Sentence, index: int) -> bool:
        """A key word written lower case that is not a number or a verb here."""
        if index not in sentence.roles or index in self._verbs(sentence):
            return False
        term = self.analysis.terms.get(sentence.tokens[index].lemma)
        return term is not None and term.kind == "word" and not term.capitalised and term.key not in _NUMBER_WORDS

    def _capital_next(self, sentence: Sentence, index: int, of: int) -> bool:
        """Whether the token at `index`, next to `of`, is capitalised: the two are one longer name."""
        left, right = min(index, of), max(index, of)
        return self._joined(sentence, left, right) and sentence.tokens[index].text[:1].isupper()

    def _introduced(self, sentence: Sentence, first: int, last: int) -> bool:
        """Whether the noun (phrase) at first..last is plainly one: after a determiner, a number, a
        preposition or a verb (adjectives in between), or opening the sentence before its verb."""
        index = first - 1
        while self._joined(sentence, index, index + 1) and sentence.roles.get(index) == "modifier":
            if not self._common_word(sentence, index):
                return False
            index -= 1
        if index < 0:
            return last + 1 in self._verbs(sentence)
        if not self._joined(sentence, index, index + 1):
            return False
        word = sentence.tokens[index].text.lower()
        return (
            word in determiners(self.analysis.language)
            or word in _INTRODUCERS
            or word[:1].isdigit()
            or word in _NUMBER_WORDS
            or index in self._verbs(sentence)
        )

    def _term_kinds(self) -> dict[str, str]:
        """The kind of every term whose occurrences all agree (a word that is a noun in one
        sentence and an adjective or a verb in another is never swapped)."""
        seen: dict[str, set[str]] = {}
        for sentence in self.analysis.content_sentences:
            for key, first, last in sentence.term_spans:
                kind = self._occurrence_kind(sentence, first, last)
                if kind is not None:
                    seen.setdefault(key, set()).add(kind)
        return {key: kinds.pop() for key, kinds in seen.items() if len(kinds) == 1}

    def _determiner_before(self, sentence: Sentence, first: int) -> str | None:
        if first == 0:
            return None
        before, token = sentence.tokens[first - 1], sentence.tokens[first]
        if sentence.text[before.end : token.start] != " ":
            return None
        word = before.text.lower()
        return word if word in determiners(self.analysis.language) else None

    def _determiners_seen(self) -> dict[str, set[str]]:
        """What each term was written after: its determiner (the first word before it that is not a
        modifier), "bare" for a singular noun with none ("on geometry": a mass noun), "count" for
        a noun counted somewhere ("a theorem", "two sides", "triangles")."""
        seen: dict[str, set[str]] = {}
        for sentence in self.analysis.content_sentences:
            for key, first, last in sentence.term_spans:
                found = seen.setdefault(key, set())
                word = self._determiner_before(sentence, first)
                if word is not None:
                    found.add(word)
                context = self._context(sentence, first, last)
                if context in ("a", "count") or looks_plural(sentence.tokens[last].text):
                    found.add("count")
                elif context == "bare":
                    found.add("bare")
        return seen

    def _context(self, sentence: Sentence, first: int, last: int) -> str:
        """An English noun's determiner: "a" (a, an, one, each, every, another), "count" (a number),
        "bare" (none: "on geometry", "Water evaporates"), "other" ("the", "this", "its" …)."""
        index = first - 1
        while index >= 0 and index in sentence.roles and sentence.roles[index] == "modifier":
            index -= 1
        if index < 0:
            return "bare"
        word = sentence.tokens[index].text.lower()
        if word in ("a", "an", "one", "each", "every", "another"):
            return "a"
        if word[:1].isdigit() or word in _NUMBER_WORDS:
            return "count"
        return "other" if word in determiners(self.analysis.language) else "bare"

    def _askable_in(self, sentence: Sentence, key: str) -> bool:
        kind = self.kind_of.get(key)
        spans = _spans_of(sentence, key)
        return bool(spans) and all(self._occurrence_kind(sentence, first, last) == kind for first, last in spans)

    def _fits(self, sentence: Sentence, spans: list[tuple[int, int]], other: Term, form: str) -> bool:
        """Whether `form` of `other` reads right where the spans are. In English: "a"/"an" agrees,
        a noun after "a" was counted somewhere in the text, a singular noun without a determiner
        replaces only one also seen without ("geometry", never "theorem"). In other languages: it
        was seen after the same determiner (which agrees in gender)."""
        common = self.kind_of.get(other.key) == "common"
        evidence = self.determiners.get(other.key, set())
        for first, last in spans:
            joined = first > 0 and sentence.text[sentence.tokens[first - 1].end : sentence.tokens[first].start] == " "
            word = sentence.tokens[first - 1].text.lower() if joined else ""
            if not self.analysis.english:
                if word in determiners(self.analysis.language) and word not in evidence:
                    return False
                continue
            if word in _ARTICLES and word != _article_for(form, sentence.tokens[first].text):
                return False
            if not common or looks_plural(form):
                continue
            context = self._context(sentence, first, last)
            if (context == "a" and "count" not in evidence) or (context == "bare" and "bare" not in evidence):
                return False
        return True

    # -- selection -----------------------------------------------------------------------------

    def write(self, requested: int, types: list[str]) -> list[Question]:
        """Alternate the requested types, spreading questions over as many sentences as possible and
        never asking the same thing twice; a type that runs out leaves its turns to the others."""
        pools = {kind: self._candidates(kind) for kind in types}
        truths = self._truth_plan(requested if types == [TRUE_FALSE] else requested // 2)
        uses: dict[int, int] = {}
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
            question = self._next(kind, pools[kind], uses, taken, truth, other)
            if question is None:
                continue
            chosen.append(question)
            self.asked.add(_normal(question.question))
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
            keys = [key for key in sentence.term_keys() if key in self.percentile and self._askable_in(sentence, key)]
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
            if question is not None and _normal(question.question) not in self.asked:
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
        offered = self._alternatives(sentence, spans, term, answer, visible=False)
        distractors = [form for _, form in offered][:DISTRACTORS]
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
        """The sentence with the term swapped, everywhere it occurs, for one other term of the same
        kind: the first swap (in the difficulty's order) that makes a statement not yet asked."""
        sentence, term = candidate.sentence, candidate.term
        spans = _spans_of(sentence, term.key)
        written = [_written(sentence, span, self.analysis) for span in spans]
        plural = [looks_plural(original) for original in written]
        for replacement, _ in self._alternatives(sentence, spans, term, written[0], visible=False):
            forms = []
            for span, wants_plural in zip(spans, plural, strict=True):
                form = self._form(replacement, wants_plural)
                if form is None:
                    break
                forms.append(capitalize_first(form) if _starts_sentence(sentence, span) else form)
            if len(forms) != len(spans) or not self._fits(sentence, spans, replacement, forms[-1]):
                continue
            statement = _replace(sentence, spans, forms)
            if _normal(statement) in self.known_statements or _normal(statement) in self.asked:
                continue
            return Question(TRUE_FALSE, statement, False, sentence.text, sentence.index, term.key)
        return None

    def _true_statement(self, candidate: _Candidate) -> Question:
        sentence = candidate.sentence
        return Question(TRUE_FALSE, sentence.text, True, sentence.text, sentence.index, "")

    def _form(self, term: Term, plural: bool) -> str | None:
        """How `term` is written in place of a singular or plural noun; None when the text never
        writes it that way ("squares" cannot replace "the hypotenuse"). Names, numbers and
        adjectives are written as they are."""
        if self.kind_of.get(term.key) != "common":
            return term.display
        matching = [form for form in term.forms if looks_plural(form) == plural]
        return term.form_like(plural) if matching else None

    def _alternatives(
        self, sentence: Sentence, spans: list[tuple[int, int]], term: Term, answer: str, *, visible: bool = True
    ) -> list[tuple[Term, str]]:
        """Other terms of the text, of the same kind as `term`, that read right in its place, with
        their written form, ordered for the difficulty: the most similar first for hard, the least
        similar first for easy. Terms visible in the sentence come last, or not at all unless
        `visible` (a distractor shown in the question gives itself away); a single noun before a
        phrase for a single noun, and the reverse."""
        kind = self.kind_of.get(term.key)
        if kind is None:
            return []
        plural = looks_plural(answer) if kind == "common" else False
        parts = term.key.split()
        in_sentence: set[str] = set()
        for key in sentence.term_keys():
            in_sentence.update([key, *key.split()])
        scored: list[tuple[int, float, int, str, Term, str]] = []
        for other in self.analysis.ranked:
            other_parts = other.key.split()
            if other.key == term.key or any(p in parts for p in other_parts) or any(p in other_parts for p in parts):
                continue
            if self.kind_of.get(other.key) != kind:
                continue
            form = self._form(other, plural)
            if form is None or not self._fits(sentence, spans, other, form):
                continue
            shown = other.key in in_sentence or any(p in in_sentence for p in other_parts)
            if shown and not visible:
                continue
            shape = 0 if (len(other_parts) > 1) == (len(parts) > 1) else 1
            tier = (2 if shown else 0) + shape
            scored.append((tier, _similarity(term, other, form, plural), other.first_sentence, other.key, other, form))
        if not scored:
            return []
        values = [item[1] for item in scored]
        middle = (max(values) + min(values)) / 2

        def order(item: tuple[int, float, int, str, Term, str]) -> tuple[int, float, int, str]:
            tier, similarity, first, key, _, _ = item
            if self.difficulty == "hard":
                return (tier, -similarity, first, key)
            if self.difficulty == "easy":
                return (tier, similarity, first, key)
            return (tier, abs(similarity - middle), first, key)

        scored.sort(key=order)
        chosen: list[tuple[Term, str]] = []
        seen = {answer.lower(), term.display.lower()}
        for item in scored:
            other, form = item[4], item[5]
            if form.lower() in seen:
                continue
            seen.add(form.lower())
            chosen.append((other, form))
        return chosen


def _article_for(form: str, original: str) -> str:
    """ "an" before a vowel letter, "a" otherwise; a word whose sound its letters do not tell ("hour",
    "unit", "one") keeps only the article the original word had."""
    first = form[:1].lower()
    if first in ("h", "u") or form.lower().startswith(("eu", "one")):
        return "an" if original[:1].lower() in "aeiou" else "a"
    return "an" if first in "aeiou" else "a"


def _similarity(term: Term, other: Term, form: str, plural: bool) -> float:
    a, b = term.display.lower(), form.lower()
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
