"""Plain-Python reading of a prompt, shared by the built-in engines: paragraphs, sentences, words,
key terms (single words and repeated two-word phrases) and, for an instruction such as "Create a
video about X", the subject X.

Deterministic by construction: nothing here iterates over a set of strings (their order changes with
PYTHONHASHSEED); dicts keep insertion order and every ranking has a positional tie-break.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from itertools import pairwise


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _wordset(
    """
    a about above after again against all almost along already also although always am among an and
    another any anything are around as at be became because become been before being below best better
    between both but by called can cannot could did do does doing done down during each either else
    enough etc even ever every exactly example examples few for from further get gets got had has have
    having he her here hers herself him himself his how however i if in include included includes
    including into is it its itself just known least less let like lot lots made make makes many may
    maybe me might more most much must my myself named near need needs neither never no nor not now of
    off often on once one only onto or other others otherwise our ours ourselves out over own per
    perhaps quite rather really same several shall she should since so some something such than that the
    their theirs them themselves then there therefore these they thing things this those though through
    thus to together too toward towards under until up upon us use used uses using usually very via was
    way ways we well were what whatever when where whether which while who whom whose why will with
    within without would yet you your yours yourself yourselves
    """
)
"""English function words and fillers: never key terms, never blanked in a quiz."""

_OTHER_STOPWORDS = {
    "spanish": _wordset(
        """al como con de del el en entre es esta estas este estos está están fue hay la las le les lo los
        muy más nos o para pero por que se ser sin sobre son su sus también un una unas unos y ya"""
    ),
    "french": _wordset(
        """a au aussi aux avec ce ces cette comme dans de des du elle elles est et il ils la le les leur
        leurs mais ne on ou par pas plus pour qui que sa se ses son sont sur très un une été être"""
    ),
    "german": _wordset(
        """als am an auch auf aus bei das dass dem den der des die durch ein eine einem einen einer er es
        für im in ist mit nach nicht oder sich sie sind um und von war wie wir zu zum zur über"""
    ),
    "portuguese": _wordset(
        """a ao aos as com como da das de do dos e em foi há mais mas na nas no nos o os ou para por que
        se ser seu sua são também um uma é está"""
    ),
    "italian": _wordset(
        """al alla anche che come con da dal dei del della delle di e gli il in la le lo ma nel nella non
        o per più si sono sua suo un una è"""
    ),
}
"""Function words of a few other languages, used only when the task says it is in that language
(several are English words: "die", "son", "come")."""
_LANGUAGE_NAMES = {
    "english": "english", "en": "english", "en-us": "english", "en-gb": "english", "en_us": "english",
    "en_gb": "english", "eng": "english",
    "spanish": "spanish", "español": "spanish", "espanol": "spanish", "es": "spanish",
    "french": "french", "français": "french", "francais": "french", "fr": "french",
    "german": "german", "deutsch": "german", "de": "german",
    "portuguese": "portuguese", "português": "portuguese", "portugues": "portuguese", "pt": "portuguese",
    "pt-br": "portuguese",
    "italian": "italian", "italiano": "italian", "it": "italian",
}  # fmt: skip


def language_key(language: str) -> str:
    """ "English", "en-GB", "Español" → "english", "spanish"; unknown names are kept (lower case)."""
    lower = language.strip().lower()
    return _LANGUAGE_NAMES.get(lower, lower)


def is_english(language: str) -> bool:
    """Connective phrases ("In this video…", "Overview") are written in English only; for other
    languages the engines fall back to the prompt's own words."""
    return language_key(language) == "english"


def stopwords_for(language: str) -> frozenset[str]:
    return STOPWORDS | _OTHER_STOPWORDS.get(language_key(language), frozenset())


_ADVERB_ENDINGS = ("ally", "ully", "ently", "antly", "ively", "ously", "ately", "ctly", "ckly", "ghly", "ssly")
_ABBREVIATIONS = _wordset("e.g i.e etc vs mr mrs ms dr prof st fig no nos approx cf al ca jr sr inc ltd co dept est")

_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*%?|[^\W\d_][\w]*(?:['’-][^\W_]+)*")
_BOUNDARY = re.compile(r"([.!?…]+)([\"'”’)\]]*)(\s+)")
_WORD_BEFORE = re.compile(r"([^\W\d_]+(?:\.[^\W\d_]+)*)$")
_BULLET = re.compile(r"^(?:[-*•‣▪]|\d{1,3}[.)])\s+")
_HEADING = re.compile(r"^#{1,6}\s+")
_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+|\s+[—–]\s+|\s+-\s+")
_SPACES = re.compile(r"\s+")

_INSTRUCTION = re.compile(
    r"^(?:please\s+)?(?:"
    r"(?:create|make|generate|write|produce|build|prepare|design|develop|draft|compose|give)\b[^.!?]*?"
    r"\b(?:about|on|covering|explaining|describing|introducing|regarding|that\s+explains|that\s+covers|"
    r"to\s+explain|to\s+teach|teaching|for)\s+"
    r"|(?:an?\s+)?(?:[\w-]+\s+){0,3}?(?:video|lesson|quiz|document|documentation|guide|tutorial|course|"
    r"presentation|animation|explainer)\s+(?:about|on|covering|explaining|introducing)\s+"
    r"|(?:explain|teach|introduce|describe|present)\s+"
    r")(?P<subject>\S.*)$",
    re.IGNORECASE,
)
_TOPIC_BREAK = re.compile(r"\s*(?:,|;|&|\band\b|\bor\b|\bincluding\b|\bsuch\s+as\b|\bas\s+well\s+as\b)\s*", re.I)
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an|some|basic\s+concepts\s+of|the\s+basics\s+of)\s+", re.I)
_TITLE_SMALL = _wordset("a an and as at but by for in nor of on or the to vs via with")


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

    @property
    def word_count(self) -> int:
        return len(self.tokens)

    def term_keys(self) -> list[str]:
        return list(dict.fromkeys(key for key, _, _ in self.term_spans))


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
    ("Pythagoras …") or a common word ("Builders …"); forms stay lower case, labels do not."""

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


@dataclass
class Analysis:
    text: str
    english: bool
    sentences: list[Sentence]
    terms: dict[str, Term]
    ranked: list[Term]
    """Terms by salience, most salient first."""
    subject: str | None
    """What an instruction prompt asks about ("basic mathematics concepts including …"), if any."""
    topics: list[str]
    title: str

    @property
    def subject_phrase(self) -> str:
        """What the text is about, for use inside a sentence (the title is capitalised)."""
        if self.subject:
            return self.subject
        if not self.english:
            return self.title
        top = sorted(self.top_terms(2, kinds=("name", "phrase", "word")), key=lambda t: (t.first_sentence, t.key))
        return " and ".join(t.display for t in top) or self.title

    @property
    def content_sentences(self) -> list[Sentence]:
        """Sentences that say something (not the instruction, not a heading)."""
        return [s for s in self.sentences if not s.instruction and not s.heading]

    @property
    def word_count(self) -> int:
        return sum(s.word_count for s in self.sentences)

    def top_terms(self, limit: int, kinds: tuple[str, ...] = ("name", "phrase", "word", "number")) -> list[Term]:
        chosen: list[Term] = []
        covered: list[str] = []
        for term in self.ranked:
            if term.kind not in kinds:
                continue
            # A single word already inside a chosen phrase adds nothing ("triangle" after "right triangle").
            parts = term.key.split()
            if any(part in covered for part in parts) or any(term.key in c.split() for c in covered):
                continue
            chosen.append(term)
            covered.extend([term.key, *parts])
            if len(chosen) == limit:
                break
        return chosen

    def terms_in(self, text: str) -> list[Term]:
        """Key terms (words and known phrases) used in any text, most salient first."""
        tokens = tokenize(text)
        keys = {t.lemma for t in tokens} | {f"{a.lemma} {b.lemma}" for a, b in pairwise(tokens)}
        return [term for term in self.ranked if term.key in keys]

    def sentence_score(self, sentence: Sentence) -> float:
        keys = sentence.term_keys()
        if not keys:
            return 0.0
        weight = sum(self.terms[key].salience for key in keys)
        return weight / math.sqrt(len(sentence.tokens) + 1)

    def key_sentences(self, limit: int) -> list[Sentence]:
        """The most informative content sentences, in text order (an extractive summary)."""
        content = self.content_sentences
        ranked = sorted(content, key=lambda s: (-self.sentence_score(s), s.index))[:limit]
        return sorted(ranked, key=lambda s: s.index)


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


def _blocks(text: str) -> list[tuple[int, str, bool]]:
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


def _is_candidate(token: Token, stopwords: frozenset[str] = STOPWORDS) -> bool:
    word = token.text
    lower = word.lower()
    if word[0].isdigit():
        return True
    if lower in stopwords or (lower.rstrip("s") in stopwords and len(lower) <= 4):
        return False
    if len(word) < 3 and not (word.isupper() and len(word) == 2):
        return False
    return not (lower.endswith(_ADVERB_ENDINGS) and len(lower) > 5)


def _instruction_subject(sentence: str) -> tuple[str, int] | None:
    match = _INSTRUCTION.match(sentence)
    if match is None:
        return None
    subject = match.group("subject").split(": ")[0].rstrip(" .!?…:")
    if not subject:
        return None
    return subject, match.start("subject")


def topics_of(subject: str) -> list[str]:
    """ "basic mathematics concepts including addition and subtraction" → the three topics."""
    topics: list[str] = []
    for piece in _TOPIC_BREAK.split(subject):
        piece = _LEADING_ARTICLE.sub("", piece.strip(" .:")).strip()
        if (
            piece
            and any(_is_candidate(t) for t in tokenize(piece))
            and piece.lower() not in (t.lower() for t in topics)
        ):
            topics.append(piece)
    return topics


def analyse(text: str, language: str = "English") -> Analysis:
    english = is_english(language)
    stopwords = stopwords_for(language)
    sentences: list[Sentence] = []
    for paragraph, block, heading in _blocks(text):
        for piece in [block] if heading else split_sentences(block):
            found = None if heading or not english else _instruction_subject(piece)
            rest = ""
            if found is not None and ": " in piece[found[1] :]:
                # "Create a quiz about the water cycle: water evaporates…" — the part after the colon
                # is content, not instruction.
                cut = piece.index(": ", found[1])
                piece, rest = piece[: cut + 1], capitalize_first(piece[cut + 2 :].strip())
            sentence = Sentence(len(sentences), paragraph, piece, tokenize(piece), heading=heading)
            if found is not None:
                sentence.instruction = True
                sentence.focus_start = found[1]
            for part in (sentence, Sentence(0, paragraph, rest, tokenize(rest))):
                if part.tokens:
                    sentences.append(part)
    for index, sentence in enumerate(sentences):
        sentence.index = index

    terms = _collect_terms(sentences, stopwords)
    ranked = sorted(terms.values(), key=lambda t: (-t.salience, t.first_sentence, t.key))
    subject = next((_instruction_subject(s.text) for s in sentences if s.instruction), None)
    subject_text = subject[0] if subject else None
    topics = topics_of(subject_text) if subject_text else []
    analysis = Analysis(text, english, sentences, terms, ranked, subject_text, topics, "")
    analysis.title = _title(analysis)
    return analysis


def _collect_terms(sentences: list[Sentence], stopwords: frozenset[str]) -> dict[str, Term]:
    singles: dict[str, Term] = {}
    capitals: dict[str, list[int]] = {}  # key -> [capitalised not sentence-initial, lower-case]
    candidates: list[list[bool]] = []
    for sentence in sentences:
        flags = [
            _is_candidate(token, stopwords) and token.start >= sentence.focus_start and not sentence.heading
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
        for index, role in _roles(sentence, candidates[sentence.index]).items():
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
                form = _display(token, term.kind)
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
            form = f"{_display(left, singles[left.lemma].kind)} {_display(right, singles[right.lemma].kind)}"
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
_VERB_OPENERS = _wordset(
    """i you he she it we they who which to can could will would shall should may might must do does did
    not cannot also often always never usually sometimes"""
)
_OBJECT_STARTERS = _wordset(
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


def _display(token: Token, kind: str) -> str:
    return token.text if kind == "name" or (token.text.isupper() and len(token.text) > 1) else token.text.lower()


def _title(analysis: Analysis) -> str:
    if analysis.subject:
        return title_case(_LEADING_ARTICLE.sub("", analysis.subject))
    headings = [s.text for s in analysis.sentences if s.heading]
    if headings:
        return headings[0]
    if not analysis.english:
        # Joining terms needs a conjunction; the prompt's first words need none.
        first = analysis.sentences[0].text.rstrip(" .!?…:;,") if analysis.sentences else ""
        cut = first.split()
        return capitalize_first(" ".join(cut[:8])) + ("…" if len(cut) > 8 else "") if cut else "Untitled"
    top = analysis.top_terms(2, kinds=("name", "phrase", "word"))
    if top:
        top = sorted(top, key=lambda t: (t.first_sentence, t.key))
        return " and ".join(title_case(t.display) for t in top)
    return title_case(" ".join(words(analysis.text)[:8])) or "Untitled"
