"""Plain-Python reading of a prompt, shared by the built-in engines: paragraphs, sentences, words,
key terms (single words and repeated two-word phrases), which sentences are complete (they have a
verb: a title or a list of nouns does not) and, for an instruction such as "Create a video about X",
the subject X.

Deterministic by construction: nothing here iterates over a set of strings (their order changes with
PYTHONHASHSEED); dicts keep insertion order and every ranking has a positional tie-break.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from itertools import pairwise

from taskapi.engines.language import is_english, language_key, stopwords_for, wordset
from taskapi.engines.terms import Term, collect_terms, is_candidate
from taskapi.engines.text import (
    Sentence,
    Token,
    capitalize_first,
    looks_plural,
    split_blocks,
    split_sentences,
    title_case,
    tokenize,
    words,
)

_FINITE = {
    "english": wordset(
        """is are was were am has have had do does did can could will would shall should may might must
        cannot can't won't isn't aren't wasn't weren't doesn't don't didn't hasn't haven't hadn't
        couldn't wouldn't shouldn't becomes became includes gets got"""
    ),
    "french": wordset(
        """est sont était étaient fut furent sera seront a ont avait avaient peut peuvent doit doivent
        fait font devient deviennent permet permettent contient contiennent"""
    ),
    "spanish": wordset(
        """es son era eran fue fueron será serán está están estaba estaban tiene tienen tenía hay ha han
        había puede pueden debe deben"""
    ),
    "german": wordset("ist sind war waren wird werden wurde wurden hat haben hatte hatten kann können muss gibt"),
    "portuguese": wordset(
        """é são era eram foi foram será serão está estão estava tem têm tinha há pode podem deve devem"""
    ),
    "italian": wordset("è sono era erano fu furono sarà ha hanno aveva può possono deve devono"),
}
"""Finite verbs (be, have, modals) that make a run of words a sentence, by language."""
_PRONOUNS = {
    "english": wordset("i you he she it we they who which"),
    "french": wordset("je tu il elle on nous vous ils elles qui"),
    "spanish": wordset("yo tú él ella nosotros ellos ellas que quien"),
    "german": wordset("ich du er sie es wir ihr man"),
    "portuguese": wordset("eu tu ele ela nós eles elas que quem"),
    "italian": wordset("io tu lui lei noi voi loro che chi"),
}
"""A word straight after a subject pronoun is a verb ("it lies", "who lived", "elles absorbent")."""
_DETERMINERS = {
    "english": wordset("the a an this that these those its their his her our your each every some any no"),
    "french": wordset("le la les un une des du ce cet cette ces son sa ses leur leurs"),
    "spanish": wordset("el la los las un una unos unas este esta estos estas su sus"),
    "german": wordset("der die das den dem des ein eine einen einem einer"),
    "portuguese": wordset("o a os as um uma uns umas este esta estes estas seu sua seus suas"),
    "italian": wordset("il lo la i gli le un uno una questo questa questi queste"),
}
"""Articles and other determiners: a word between a noun and one is a verb ("the hypotenuse equals
the sum"); the quiz matches nouns to the determiners they were seen with."""
_LINKS = {
    "english": wordset(
        """from into to in on at with by through around across over under between during after before up
        down out back away off about as onto toward towards along against within without"""
    ),
    "french": wordset("à au aux dans sur par en avec vers entre pour sous chez"),
}
"""Prepositions after which a word in -s/-ed (-ent in French) that follows a noun is a verb
("rain falls from the clouds"), in a sentence that ends with a full stop."""
_STOP_VERBS = wordset("uses makes gets includes needs contains")
"""Verbs that are also stopwords (never key terms), still verbs between a noun and a determiner."""
_IRREGULAR_PAST = wordset(
    """began became bore brought built bought caught chose came drew drove ate fell felt fought found flew
    forgot froze gave grew held hid kept knew laid led left lost meant met paid ran rose saw sent set
    shook shot showed slept spent spoke spread stood stole struck swam taught thought threw told took
    understood woke wore won wrote"""
)
"""Irregular past forms, verbs when they follow a noun ("the empire fell", "engineers built")."""
_VERB_ENDINGS = {"english": ("s", "ed"), "french": ("ent",)}
_NOT_VERB_ENDINGS = {"english": ("ss", "us", "is", "'s", "’s"), "french": ("ment",)}

_LONG_SENTENCE = 7

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
    language: str = "english"
    """language_key() of the task's language."""

    @property
    def subject_phrase(self) -> str:
        """What the text is about, for use inside a sentence (the title is capitalised)."""
        if self.subject:
            return self.subject
        if not self.english:
            return self.title
        top = sorted(
            self.top_terms(2, kinds=("name", "phrase", "word"), naming=True), key=lambda t: (t.first_sentence, t.key)
        )
        return " and ".join(t.display for t in top) or self.title

    @property
    def content_sentences(self) -> list[Sentence]:
        """Sentences that say something (not the instruction, not a heading)."""
        return [s for s in self.sentences if not s.instruction and not s.heading]

    @property
    def complete_sentences(self) -> list[Sentence]:
        """Content sentences that are sentences (they have a verb), not titles, headings, list items
        of a few nouns or other fragments ("Pythagoras and right triangles")."""
        return [s for s in self.content_sentences if is_complete(s, self.language)]

    @property
    def has_text(self) -> bool:
        """Whether the prompt says something rather than naming topics: a complete sentence, or a
        long one ending with a full stop whose verb the guesses miss ("Mitochondria break down
        glucose during cellular respiration."). A title ("Lesson 1: Pythagoras and right
        triangles.") is neither."""
        return bool(self.complete_sentences) or any(
            s.word_count >= _LONG_SENTENCE and s.text.rstrip(" \"'”’)]")[-1:] in (".", "!", "?") and ": " not in s.text
            for s in self.content_sentences
        )

    def outline(self) -> tuple[str, list[str]]:
        """For a prompt without complete sentences: a title and the topics it names (an
        instruction's topics, headings, list items, the parts of "X and Y" or "X: a, b and c"),
        nothing invented. ("", []) when the prompt names nothing."""
        lines = [
            s.text.strip().rstrip(" .!?…:;,")
            for s in self.sentences
            if not s.instruction and any(is_candidate(t) for t in s.tokens)
        ]
        if self.subject:
            title, items = self.title, [*self.topics, *lines]
        elif not lines:
            return "", []
        elif len(lines) > 1:
            title, items = lines[0], lines[1:]
        elif ": " in lines[0]:
            title, rest = lines[0].split(": ", 1)
            items = topics_of(rest)
        else:
            title = lines[0]
            items = topics_of(title) if self.english else []
        title = capitalize_first(title.strip())
        kept: list[str] = []
        for item in items:
            item = capitalize_first(item.strip())
            if item and item.lower() not in [title.lower(), *(k.lower() for k in kept)]:
                kept.append(item)
        if not any(is_candidate(t) for t in tokenize(title)):
            return "", []
        return title, kept

    @property
    def word_count(self) -> int:
        return sum(s.word_count for s in self.sentences)

    def top_terms(
        self, limit: int, kinds: tuple[str, ...] = ("name", "phrase", "word", "number"), *, naming: bool = False
    ) -> list[Term]:
        """The most salient terms of these kinds, a word inside a chosen phrase left out; `naming`
        keeps only terms that can name a subject (no verbs: a title is never "Discovered and …")."""
        chosen: list[Term] = []
        covered: list[str] = []
        for term in self.ranked:
            if term.kind not in kinds or (naming and term.group == "verb"):
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


def outline_notes(topics: list[str], what: str, part: str, wanted: str, hint: str) -> list[str]:
    """The plain statement an outline carries (an engine's document or timeline, and its summary):
    what the prompt gave, what was built from it, how to get more."""
    if topics:
        named = "a topic" if len(topics) == 1 else f"{len(topics)} topics"
        gave = f"names {named} but gives no text about {'it' if len(topics) == 1 else 'them'}"
        built = f"the title and one {part} per topic"
    else:
        gave, built = "gives a title but no text", "the title"
    return [
        f"Outline only: the prompt {gave}, so this {what} has {built}, nothing more; the built-in engine "
        "does not write about a topic on its own.",
        f"For {wanted}, send the content itself as story_prompt, or {hint}.",
    ]


def determiners(language: str) -> frozenset[str]:
    """Articles and other determiners of a language (language_key() form)."""
    return _DETERMINERS.get(language, frozenset())


def is_complete(sentence: Sentence, language: str = "english") -> bool:
    """Whether a sentence of the prompt is a sentence: it has a verb (see verb_positions), and is
    neither a heading nor an instruction. Misses make the engines more careful, not less honest: a
    sentence it does not recognise is never asked about."""
    return not (sentence.heading or sentence.instruction) and bool(verb_positions(sentence, language))


def verb_positions(sentence: Sentence, language: str = "english") -> list[int]:
    """Tokens of a sentence that are verbs, guessed without a tagger: a finite form of be, have or a
    modal ("is", "has", "can"); a word right after a subject pronoun ("it lies"); a word between a
    noun and a determiner ("the hypotenuse equals the sum"); a common irregular past after a noun
    ("engineers built roads"); and, in a sentence that ends with a full stop, a word in -s or -ed
    after a noun and before a preposition ("rain falls from the clouds"), a word in -s or -ed after
    a singular noun that opens the sentence or follows a determiner ("chlorophyll absorbs light"),
    a word after a plural one there and before a preposition or determiner ("animals depend on
    plants")."""
    english = language == "english"
    finite = _FINITE.get(language, frozenset())
    pronouns = _PRONOUNS.get(language, frozenset())
    determiners = _DETERMINERS.get(language, frozenset())
    links = _LINKS.get(language, frozenset())
    endings = _VERB_ENDINGS.get(language, ())
    not_endings = _NOT_VERB_ENDINGS.get(language, ())
    stopwords = stopwords_for(language)
    stop_verbs = _STOP_VERBS if english else frozenset()
    irregular = _IRREGULAR_PAST if english else frozenset()
    tokens, text = sentence.tokens, sentence.text
    ended = text.rstrip(" \"'”’)]")[-1:] in (".", "!", "?")

    def joined(left: int, right: int) -> bool:
        return left >= 0 and right < len(tokens) and text[tokens[left].end : tokens[right].start] == " "

    def nounish(index: int) -> bool:
        return index >= 0 and is_candidate(tokens[index], stopwords) and not tokens[index].text[0].isdigit()

    def is_verb(index: int, token: Token) -> bool:
        lower = token.text.lower()
        if lower in finite:
            return True
        if not token.text.isalpha() or not token.text.islower() or (lower in stopwords and lower not in stop_verbs):
            return False
        before, after = index - 1, index + 1
        if joined(before, index) and tokens[before].text.lower() in pronouns:
            return True
        if not (joined(before, index) and nounish(before)):
            return False
        if lower in irregular:
            return True
        if not joined(index, after):
            return False
        following = tokens[after].text.lower()
        if following in determiners:
            return True
        if not ended:
            return False
        verb_ending = lower.endswith(endings) and not lower.endswith(not_endings)
        if following in links and verb_ending:
            return True
        opens = before == 0 or (joined(before - 1, before) and tokens[before - 1].text.lower() in determiners)
        if not (english and opens) or following in ("of", "and", "or") or following in finite or following in irregular:
            # "Roman engineers built roads": the verb is the next word, not this one.
            return False
        subject_plural = looks_plural(tokens[before].text)
        if verb_ending and not subject_plural:
            return True
        return subject_plural and not verb_ending and (following in links or following in determiners)

    return [index for index, token in enumerate(tokens) if is_verb(index, token)]


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
        if piece and any(is_candidate(t) for t in tokenize(piece)) and piece.lower() not in (t.lower() for t in topics):
            topics.append(piece)
    return topics


def analyse(text: str, language: str = "English") -> Analysis:
    english = is_english(language)
    stopwords = stopwords_for(language)
    sentences: list[Sentence] = []
    for paragraph, block, heading in split_blocks(text):
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

    terms = collect_terms(sentences, stopwords)
    ranked = sorted(terms.values(), key=lambda t: (-t.salience, t.first_sentence, t.key))
    subject = next((_instruction_subject(s.text) for s in sentences if s.instruction), None)
    subject_text = subject[0] if subject else None
    topics = topics_of(subject_text) if subject_text else []
    analysis = Analysis(text, english, sentences, terms, ranked, subject_text, topics, "", language_key(language))
    analysis.title = _title(analysis)
    return analysis


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
    top = analysis.top_terms(2, kinds=("name", "phrase", "word"), naming=True)
    if top:
        top = sorted(top, key=lambda t: (t.first_sentence, t.key))
        return " and ".join(title_case(t.display) for t in top)
    return title_case(" ".join(words(analysis.text)[:8])) or "Untitled"
