"""English text normalisation for word and character error rates, as Whisper's paper defines it.

Speech models write "25%", "Mr. Smith" and "don't"; references say "twenty five percent",
"mister smith" and "do not". Scored raw, those are errors of style, not of hearing. OpenAI's
Whisper paper (Radford et al. 2022, Appendix C) describes the normaliser its WER figures use;
this module is our own implementation of that behaviour, so that our WER is comparable with the
published ones:

1. lowercase; drop text in ``[brackets]``, ``<angle brackets>`` and ``(parentheses)``;
2. drop the fillers hmm, mm, mhm, mmm, uh, um;
3. spell out contractions and titles ("won't" -> "will not", "'s" -> " is", "mr" -> "mister");
4. drop commas between digits and full stops not followed by a digit; NFKD, then drop
   diacritics (with œ -> oe, ß -> ss, ...) and turn other marks, symbols and punctuation into
   spaces (keeping ``. % $ ¢ € £`` for numbers);
5. spelled-out numbers become digits ("twenty five" -> "25", "one hundred" -> "100",
   "twenty first" -> "21st", "five dollars" -> "$5", "ten percent" -> "10%", "two and a
   half" -> "2.5", "one oh one" -> "101"); a lone 1 is written "one" again;
6. British spellings become American ones;
7. currency and percent signs left without a number become spaces; whitespace collapses.

Where we differ from the reference (``transformers``' EnglishTextNormalizer, a port of
Whisper's): the British-to-American map is a small one of common words (:data:`AMERICAN`)
instead of Whisper's english.json of about 1,700 entries; "ninth" becomes "9th" (the reference
knows only the misspelling "nineth"); and the result has no space at either end.
"""

from __future__ import annotations

import re
import unicodedata

from modelatlas.evals.metrics.english_numbers import normalize_numbers

__all__ = ["AMERICAN", "basic_normalize", "normalize_english", "normalize_numbers"]

_FILLERS = re.compile(r"\b(?:hmm|mm|mhm|mmm|uh|um)\b")
_BRACKETED = re.compile(r"[<\[][^>\]]*[>\]]")
_PARENTHESISED = re.compile(r"\(([^)]+?)\)")

# (pattern, replacement), applied in order: whole words first, then the endings they contain.
_WORDS = {
    "won't": "will not", "can't": "can not", "let's": "let us", "ain't": "aint", "y'all": "you all",
    "wanna": "want to", "gotta": "got to", "gonna": "going to", "i'ma": "i am going to",
    "imma": "i am going to", "woulda": "would have", "coulda": "could have",
    "shoulda": "should have", "ma'am": "madam",
}  # fmt: skip
_TITLES = {
    "mr": "mister", "mrs": "missus", "st": "saint", "dr": "doctor", "prof": "professor",
    "capt": "captain", "gov": "governor", "ald": "alderman", "gen": "general", "sen": "senator",
    "rep": "representative", "pres": "president", "rev": "reverend", "hon": "honorable",
    "asst": "assistant", "assoc": "associate", "lt": "lieutenant", "col": "colonel",
    "jr": "junior", "sr": "senior", "esq": "esquire",
}  # fmt: skip
# Perfect tenses first ("'s been" is "has been", not "is been"), then the bare endings.
_ENDINGS = [
    ("'d been", " had been"), ("'s been", " has been"), ("'d gone", " had gone"),
    ("'s gone", " has gone"), ("'d done", " had done"), ("'s got", " has got"),
    ("n't", " not"), ("'re", " are"), ("'s", " is"), ("'d", " would"), ("'ll", " will"),
    ("'t", " not"), ("'ve", " have"), ("'m", " am"),
]  # fmt: skip
_CONTRACTIONS = (
    [(re.compile(rf"\b{re.escape(k)}\b"), v) for k, v in _WORDS.items()]
    + [(re.compile(rf"\b{k}\b"), f"{v} ") for k, v in _TITLES.items()]
    + [(re.compile(rf"{re.escape(k)}\b"), v) for k, v in _ENDINGS]
)

# Letters NFKD does not split into a base letter and a diacritic.
_LETTERS = {"œ": "oe", "æ": "ae", "ø": "o", "ß": "ss", "đ": "d", "ð": "d", "þ": "th", "ł": "l"}
_NUMERIC_SIGNS = ".%$¢€£"

# British -> American, for common words and their usual forms (Whisper's list is far longer).
_OUR = ["colour", "flavour", "honour", "humour", "labour", "neighbour", "favour", "harbour", "rumour",
        "behaviour", "vapour", "odour", "savour", "endeavour", "armour"]  # fmt: skip
_ISE = ["organis", "realis", "recognis", "apologis", "criticis", "emphasis", "summaris", "memoris",
        "prioritis", "standardis", "normalis", "minimis", "maximis", "customis", "authoris"]  # fmt: skip
_YSE = ["analys", "paralys", "catalys"]
_LL = ["travel", "cancel", "model", "label", "level", "signal", "fuel", "marvel", "counsel"]
_FIXED = {
    "favourite": "favorite", "favourites": "favorites", "centre": "center", "centres": "centers",
    "theatre": "theater", "theatres": "theaters", "metre": "meter", "metres": "meters",
    "litre": "liter", "litres": "liters", "fibre": "fiber", "defence": "defense",
    "offence": "offense", "licence": "license", "programme": "program", "programmes": "programs",
    "grey": "gray", "aluminium": "aluminum", "catalogue": "catalog", "tyre": "tire", "tyres": "tires",
    "jewellery": "jewelry", "plough": "plow", "aeroplane": "airplane", "aeroplanes": "airplanes",
    "ageing": "aging", "manoeuvre": "maneuver", "mould": "mold", "moustache": "mustache",
    "pyjamas": "pajamas", "sceptical": "skeptical", "cosy": "cozy", "dialogue": "dialog",
}  # fmt: skip


def _american() -> dict[str, str]:
    """The map: the fixed words, plus the usual forms of each British pattern."""
    found = dict(_FIXED)
    for word in _OUR:  # colour, colours, coloured, colouring, colourful -> color...
        for end in ("", "s", "ed", "ing", "ful", "less"):
            found[word + end] = word[:-2] + "r" + end
    for stem in _ISE:  # organise, organises, organised, organising, organisation
        for end in ("e", "es", "ed", "ing", "er", "ers", "ation", "ations"):
            found[stem + end] = stem[:-1] + "z" + end
    for stem in _YSE:  # analyse -> analyze (not "analyses": also the plural of analysis)
        for end in ("e", "ed", "ing"):
            found[stem + end] = stem[:-1] + "z" + end
    for word in _LL:  # travelled, travelling, traveller -> traveled, traveling, traveler
        for end in ("ed", "ing", "er", "ers"):
            found[word + "l" + end] = word + end
    return found


AMERICAN = _american()


def normalize_english(text: str) -> str:
    """``text`` normalised as Whisper's English normaliser does (see the module docstring)."""
    s = text.lower()
    s = _PARENTHESISED.sub("", _BRACKETED.sub("", s))
    s = _FILLERS.sub("", s)
    s = re.sub(r"\s+'", "'", s)  # "don 't" -> "don't"
    for pattern, replacement in _CONTRACTIONS:
        s = pattern.sub(replacement, s)
    s = re.sub(r"(\d),(\d)", r"\1\2", s)  # 1,000 -> 1000
    s = re.sub(r"\.([^0-9]|$)", r" \1", s)  # full stops, but not decimal points
    s = _strip_marks(s, keep=_NUMERIC_SIGNS)
    s = normalize_numbers(s)
    s = " ".join(AMERICAN.get(word, word) for word in s.split())
    s = re.sub(r"[.$¢€£]([^0-9])", r" \1", s)  # signs that no number follows
    s = re.sub(r"([^0-9])%", r"\1 ", s)  # a percent sign that no number precedes
    return " ".join(s.split())


def basic_normalize(text: str) -> str:
    """Language-neutral cleaning: lowercase, bracketed text dropped, marks, symbols and
    punctuation as spaces (diacritics kept), whitespace collapsed."""
    s = _PARENTHESISED.sub("", _BRACKETED.sub("", text.lower()))
    s = unicodedata.normalize("NFKC", s)
    s = "".join(" " if unicodedata.category(ch)[0] in "MSP" else ch for ch in s)
    return " ".join(s.lower().split())


def _strip_marks(text: str, keep: str = "") -> str:
    """Diacritics dropped (NFKD splits them off), other marks, symbols and punctuation as spaces."""
    out = []
    for ch in unicodedata.normalize("NFKD", text):
        category = unicodedata.category(ch)
        if ch in keep:
            out.append(ch)
        elif ch in _LETTERS:
            out.append(_LETTERS[ch])
        elif category != "Mn":
            out.append(" " if category[0] in "MSP" else ch)
    return "".join(out)
