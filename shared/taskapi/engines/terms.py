"""Key terms of a prompt: single words and repeated two-word phrases, their kind (name, number,
phrase, word), the part of speech guessed from their neighbours, and their salience.

Deterministic by construction: nothing here iterates over a set of strings (their order changes with
PYTHONHASHSEED); dicts keep insertion order and every ranking has a positional tie-break.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from taskapi.engines.language import STOPWORDS, wordset
from taskapi.engines.text import Sentence, Token, capitalize_first, looks_plural

_ADVERB_ENDINGS = ("ally", "ully", "ently", "antly", "ively", "ously", "ately", "ctly", "ckly", "ghly", "ssly")


@dataclass
class Term:
    key: str
    kind: str
    """"name", "number", "phrase" or "word"."""
    count: int
    first_sentence: int
    forms: dict[str, int]
    salience: float = 0.0
    role: str = "head"
    """Guessed part of speech from the word's neighbours: "head" (a noun ending its phrase),
    "modifier" (a word before the noun), "verb"; phrases, names and numbers are heads."""
    roles: dict[str, int] = field(default_factory=dict)
    capitalised: bool = False
    """Only ever written with a capital letter, but only at the start of sentences: a name
    ("Pythagoras …") or a common word ("Builders …"), which cannot be told apart. Its forms keep the
    capital letter (a name is never written lower case); the quiz never offers it as either kind."""

    @property
    def label(self) -> str:
        """The term for a heading or a list of terms."""
        return capitalize_first(self.display) if self.capitalised else self.display

    @property
    def group(self) -> str:
        """What the term can stand in for: "number", "phrase", "name", "noun", "modifier" or "verb"."""
        if self.kind in ("number", "phrase"):
            return self.kind
        if self.role != "head":
            return self.role
        return "name" if self.kind == "name" else "noun"

    @property
    def display(self) -> str:
        return max(self.forms.items(), key=lambda item: item[1])[0]

    def form_like(self, plural: bool) -> str:
        """The most frequent written form with the requested plurality, else the usual form."""
        matching = [(n, form) for form, n in self.forms.items() if looks_plural(form) == plural]
        if not matching:
            return self.display
        best = max(n for n, _ in matching)
        return next(form for n, form in matching if n == best)


def is_candidate(token: Token, stopwords: frozenset[str] = STOPWORDS) -> bool:
    word = token.text
    lower = word.lower()
    if word[0].isdigit():
        return True
    if lower in stopwords or (lower.rstrip("s") in stopwords and len(lower) <= 4):
        return False
    if len(word) < 3 and not (word.isupper() and len(word) == 2):
        return False
    return not (lower.endswith(_ADVERB_ENDINGS) and len(lower) > 5)


def collect_terms(sentences: list[Sentence], stopwords: frozenset[str]) -> dict[str, Term]:
    singles: dict[str, Term] = {}
    capitals: dict[str, list[int]] = {}  # key -> [capitalised not sentence-initial, lower-case]
    candidates: list[list[bool]] = []
    for sentence in sentences:
        flags = [
            is_candidate(token, stopwords) and token.start >= sentence.focus_start and not sentence.heading
            for token in sentence.tokens
        ]
        candidates.append(flags)
        for token, flag in zip(sentence.tokens, flags, strict=True):
            if not flag:
                continue
            term = singles.setdefault(token.lemma, Term(token.lemma, "word", 0, sentence.index, {}))
            term.count += 1
            caps = capitals.setdefault(token.lemma, [0, 0])
            if token.text[0].isupper() and not token.initial:
                caps[0] += 1
            elif token.text[0].islower():
                caps[1] += 1

    for sentence in sentences:
        sentence.roles = _roles(sentence, candidates[sentence.index])
        for index, role in sentence.roles.items():
            votes = singles[sentence.tokens[index].lemma].roles
            votes[role] = votes.get(role, 0) + 1
    for key, term in singles.items():
        caps = capitals[key]
        if key[0].isdigit():
            term.kind = "number"
        elif caps[0] and not caps[1]:
            term.kind = "name"
        term.capitalised = term.kind == "word" and not caps[1]
        term.role = max(_ROLE_ORDER, key=lambda role: (term.roles.get(role, 0), -_ROLE_ORDER.index(role)))
    # Written forms, now that we know which words are names (they keep their capital letter).
    for sentence in sentences:
        for token, flag in zip(sentence.tokens, candidates[sentence.index], strict=True):
            if flag:
                term = singles[token.lemma]
                form = _display(token, term.kind, term.capitalised)
                term.forms[form] = term.forms.get(form, 0) + 1

    phrases: dict[str, Term] = {}
    phrase_spans: list[list[tuple[str, int, int]]] = []
    for sentence in sentences:
        spans = []
        flags = candidates[sentence.index]
        for i in range(len(sentence.tokens) - 1):
            left, right = sentence.tokens[i], sentence.tokens[i + 1]
            if not (flags[i] and flags[i + 1]) or sentence.text[left.end : right.start] != " ":
                continue
            if left.text[0].isdigit() and right.text[0].isdigit():
                continue
            key = f"{left.lemma} {right.lemma}"
            form = " ".join(_display(t, singles[t.lemma].kind, singles[t.lemma].capitalised) for t in (left, right))
            term = phrases.setdefault(key, Term(key, "phrase", 0, sentence.index, {}))
            term.count += 1
            term.forms[form] = term.forms.get(form, 0) + 1
            spans.append((key, i, i + 1))
        phrase_spans.append(spans)
    kept = {key: term for key, term in phrases.items() if term.count >= 2}

    for sentence in sentences:
        spans = [(token.lemma, i, i) for i, token in enumerate(sentence.tokens) if candidates[sentence.index][i]]
        spans += [span for span in phrase_spans[sentence.index] if span[0] in kept]
        sentence.term_spans = sorted(spans, key=lambda span: (span[1], span[2]))

    terms = {**singles, **kept}
    # A word counts fully where it stands alone and half inside a repeated phrase, so that "right
    # triangle" outranks "right" when the word is hardly ever used without the phrase.
    inside: dict[str, int] = {}
    for phrase in kept.values():
        for part in dict.fromkeys(phrase.key.split()):
            inside[part] = inside.get(part, 0) + phrase.count
    for term in terms.values():
        length = min(len(term.display), 14)
        bonus = {"phrase": 1.5, "name": 1.0, "number": -0.5}.get(term.kind, 0.0)
        shared = min(inside.get(term.key, 0), term.count) if term.kind != "phrase" else 0
        weight = term.count - shared / 2
        term.salience = round(2.0 * weight + length / 4.0 + bonus, 6)
    return terms


_ROLE_ORDER = ("head", "modifier", "verb")
_VERB_OPENERS = wordset(
    """i you he she it we they who which to can could will would shall should may might must do does did
    not cannot also often always never usually sometimes"""
)
_OBJECT_STARTERS = wordset(
    "the a an this that these those its their his her our your my each every some any no all both"
)


def _roles(sentence: Sentence, candidate: list[bool]) -> dict[int, str]:
    """Guess a role for each key-word token from its neighbours, without a tagger: in a run of
    content words the last is the noun and the others modify it ("the longest side"); a run opened
    by a pronoun, "to" or a modal starts with a verb ("it lies", "to check"); a run followed by an
    article ends with a verb ("the theorem states that", "the hypotenuse equals the sum")."""
    tokens, text = sentence.tokens, sentence.text
    roles: dict[int, str] = {}
    index = 0
    while index < len(tokens):
        if not candidate[index]:
            index += 1
            continue
        run = [index]
        while (
            run[-1] + 1 < len(tokens)
            and candidate[run[-1] + 1]
            and not text[tokens[run[-1]].end : tokens[run[-1] + 1].start].strip()
        ):
            run.append(run[-1] + 1)
        index = run[-1] + 1
        before = tokens[run[0] - 1] if run[0] > 0 else None
        joined_before = before is not None and not text[before.end : tokens[run[0]].start].strip()
        after = tokens[index] if index < len(tokens) else None
        joined_after = after is not None and not text[tokens[run[-1]].end : after.start].strip()
        opened_by_verb = joined_before and before is not None and before.text.lower() in _VERB_OPENERS
        if opened_by_verb and not tokens[run[0]].text[0].isdigit():
            roles[run.pop(0)] = "verb"
        if run and joined_after and after is not None and after.text.lower() in _OBJECT_STARTERS:
            roles[run.pop()] = "verb"
        for position, token_index in enumerate(run):
            word = tokens[token_index].text.lower()
            role = "head" if position == len(run) - 1 else "modifier"
            preceded = tokens[token_index - 1].text.lower() if token_index > 0 else ""
            if role == "head" and len(word) >= 5 and word.endswith(("ing", "ed")) and preceded not in ("the", "a"):
                role = "verb"
            roles[token_index] = role
    return roles


def _display(token: Token, kind: str, capitalised: bool = False) -> str:
    """The token as a term is written: names, acronyms and words only ever seen with a capital
    letter keep it ("Pythagoras …" is never turned into "pythagoras")."""
    keep = kind == "name" or capitalised or (token.text.isupper() and len(token.text) > 1)
    return token.text if keep else token.text.lower()
