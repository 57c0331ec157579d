"""The languages the built-in engines know: names of a language ("en-GB", "Español"), and the
function words that are never key terms (English always, a few other languages when the task says it
is in one of them)."""

from __future__ import annotations


def wordset(text: str) -> frozenset[str]:
    """The whitespace-separated words of a word list."""
    return frozenset(text.split())


STOPWORDS = wordset(
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
    "spanish": wordset(
        """al como con de del el en entre es esta estas este estos está están fue hay la las le les lo los
        muy más nos o para pero por que se ser sin sobre son su sus también un una unas unos y ya"""
    ),
    "french": wordset(
        """a au aussi aux avec ce ces cette comme dans de des du elle elles est et il ils la le les leur
        leurs mais ne on ou par pas plus pour qui que sa se ses son sont sur très un une été être"""
    ),
    "german": wordset(
        """als am an auch auf aus bei das dass dem den der des die durch ein eine einem einen einer er es
        für im in ist mit nach nicht oder sich sie sind um und von war wie wir zu zum zur über"""
    ),
    "portuguese": wordset(
        """a ao aos as com como da das de do dos e em foi há mais mas na nas no nos o os ou para por que
        se ser seu sua são também um uma é está"""
    ),
    "italian": wordset(
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
