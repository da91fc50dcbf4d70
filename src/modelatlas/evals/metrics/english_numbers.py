"""Spelled-out English numbers as digits, the way Whisper's normaliser writes them.

"twenty five" -> "25", "one hundred and five" -> "105", "nineteen ninety five" -> "1995" (two
numbers said in a row are read as one written number), "one oh one" -> "101", "double five" ->
"55", "three point one four" -> "3.14", "twenty first" -> "21st", "the nineties" -> "the 90s",
"five dollars" -> "$5", "two dollars and seven cents" -> "$2.07", "ten percent" -> "10%",
"minus three" -> "-3", "two and a half" -> "2.5". A lone 1 is written "one" again (it reads
better, and "one" is as often a pronoun as a number).

A reader walks the words once, holding the number said so far: an int while it can still be
added to ("twenty" then "five"), a digit string once it is a run of digits or a decimal
("nineteen" then "ninety" is "1990"). Our own implementation of the behaviour of the reference
(``transformers.models.whisper.english_normalizer.EnglishNumberNormalizer``); see
``tests/test_english_normalizer.py`` for the comparison.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["normalize_numbers"]

_ONE_NAMES = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]  # fmt: skip
ONES = {name: n for n, name in enumerate(_ONE_NAMES, start=1)}
_TEN_NAMES = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
TENS = {name: 10 * n for n, name in enumerate(_TEN_NAMES, start=2)}
_SCALE_NAMES = [
    "thousand", "million", "billion", "trillion", "quadrillion", "quintillion", "sextillion",
    "septillion", "octillion", "nonillion", "decillion",
]  # fmt: skip
SCALES = {"hundred": 100, **{name: 1000**n for n, name in enumerate(_SCALE_NAMES, start=1)}}
ZEROS = {"o", "oh", "zero"}

_IRREGULAR = {1: "first", 2: "second", 3: "third", 5: "fifth", 8: "eighth", 9: "ninth", 12: "twelfth"}
_SUFFIXES = {1: "st", 2: "nd", 3: "rd"}
# (value, suffix) of the words that end a number: plurals ("sixes", "twenties") and ordinals.
ONES_ENDED: dict[str, tuple[int, str]] = {
    **{("sixes" if name == "six" else name + "s"): (n, "s") for name, n in ONES.items()},
    **{_IRREGULAR.get(n, name + "th"): (n, _SUFFIXES.get(n, "th")) for name, n in ONES.items()},
    "zeroth": (0, "th"),
    "nineth": (9, "th"),  # the reference's spelling, kept so that both agree on it
}
TENS_ENDED = {
    **{name[:-1] + "ies": (n, "s") for name, n in TENS.items()},
    **{name[:-1] + "ieth": (n, "th") for name, n in TENS.items()},
}
SCALES_ENDED = {
    **{name + "s": (n, "s") for name, n in SCALES.items()},
    **{name + "th": (n, "th") for name, n in SCALES.items()},
}
SIGNS = {"minus": "-", "negative": "-", "plus": "+", "positive": "+"}
CURRENCIES = {"pound": "£", "pounds": "£", "euro": "€", "euros": "€", "dollar": "$", "dollars": "$"}
CURRENCIES |= {"cent": "¢", "cents": "¢"}
_PREFIX_SIGNS = set(SIGNS.values()) | set(CURRENCIES.values())
DIGIT_WORDS = set(ONES) | set(TENS) | ZEROS  # what may follow "point"
NUMBER_WORDS = (
    (DIGIT_WORDS | set(ONES_ENDED) | set(TENS_ENDED) | set(SCALES) | set(SCALES_ENDED) | set(SIGNS))
    | set(CURRENCIES)
    | {"per", "percent", "and", "double", "triple", "point"}
)

_DIGITS = re.compile(r"\d+(?:\.\d+)?")


def _is_digits(word: str | None) -> bool:
    return word is not None and _DIGITS.fullmatch(word) is not None


def _times(value: int | str, scale: int) -> int | None:
    """``value`` (a digit string such as "3.5") times ``scale``, when that is a whole number."""
    try:
        product = Fraction(value) * scale
    except ValueError:  # "1.2.3": not one number
        return None
    return product.numerator if product.denominator == 1 else None


def _scaled(value: int, scale: int) -> int:
    """ "two thousand five" then "hundred": the part below a thousand is multiplied."""
    return value // 1000 * 1000 + value % 1000 * scale


class _NumberReader:
    """One pass over the words; ``value`` is the number being said, ``prefix`` a sign before it."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.value: int | str | None = None
        self.prefix: str | None = None

    def emit(self, text: int | str) -> None:
        self.out.append(f"{self.prefix or ''}{text}")
        self.value = self.prefix = None

    def flush(self) -> None:
        if self.value is not None:
            self.emit(self.value)

    def read(self, words: list[str]) -> list[str]:
        i = 0
        while i < len(words):
            before = words[i - 1] if i else None
            after = words[i + 1] if i + 1 < len(words) else None
            i += self.step(before, words[i], after)
        self.flush()
        return self.out

    def step(self, before: str | None, word: str, after: str | None) -> int:
        """Read ``word``; the number of words used (2 when it takes ``after`` with it)."""
        signed = word[0] in _PREFIX_SIGNS
        if _is_digits(word[1:] if signed else word):
            self.digits(word, signed)
        elif word not in NUMBER_WORDS:
            self.flush()
            self.emit(word)
        elif word in ZEROS:
            self.value = f"{self.value or ''}0"
        elif word in ONES:
            self.value = self.with_one(before, ONES[word])
        elif word in TENS:
            self.value = self.with_ten(TENS[word])
        elif word in ONES_ENDED or word in TENS_ENDED:
            n, suffix = ONES_ENDED.get(word) or TENS_ENDED[word]
            self.emit(f"{self.with_one(before, n) if word in ONES_ENDED else self.with_ten(n)}{suffix}")
        elif word in SCALES:
            self.scale(SCALES[word])
        elif word in SCALES_ENDED:
            self.scale_ended(*SCALES_ENDED[word])
        else:
            return self.special(before, word, after)
        return 1

    def digits(self, word: str, signed: bool) -> None:
        """A number written in digits ("25", "$3", "0.5"); after "point" it is the decimals."""
        if isinstance(self.value, str) and self.value.endswith("."):
            self.value += word
            return
        self.flush()
        number = Fraction(word[1:] if signed else word)
        self.prefix = word[0] if signed else self.prefix
        self.value = number.numerator if number.denominator == 1 else (word[1:] if signed else word)

    def with_one(self, before: str | None, n: int) -> int | str:
        """The value with one to nineteen said after it: added, or written after it."""
        value = self.value
        if value is None:
            return n
        if isinstance(value, str) or before in ONES:
            # "nineteen ninety five": the five takes the place of ninety's zero
            return f"{value}"[:-1] + str(n) if before in TENS and n < 10 else f"{value}{n}"
        fits = value % 10 == 0 if n < 10 else value % 100 == 0
        return value + n if fits else f"{value}{n}"

    def with_ten(self, n: int) -> int | str:
        value = self.value
        if value is None:
            return n
        return value + n if isinstance(value, int) and value % 100 == 0 else f"{value}{n}"

    def scale(self, n: int) -> None:
        value = self.value
        if value is None:
            self.value = n
        elif isinstance(value, str) or value == 0:
            product = _times(value, n)
            if product is None:
                self.flush()
            self.value = n if product is None else product
        else:
            self.value = _scaled(value, n)

    def scale_ended(self, n: int, suffix: str) -> None:
        value = self.value
        if value is None:
            self.emit(f"{n}{suffix}")
        elif isinstance(value, int):
            self.emit(f"{_scaled(value, n)}{suffix}")
        elif (product := _times(value, n)) is not None:
            self.emit(f"{product}{suffix}")
        else:
            self.emit(value)
            self.emit(f"{n}{suffix}")

    def special(self, before: str | None, word: str, after: str | None) -> int:
        """Signs, currencies, percent, and the joining words "and", "double", "triple", "point"."""
        if word in SIGNS:
            self.flush()
            if after in NUMBER_WORDS or _is_digits(after):
                self.prefix = SIGNS[word]
            else:
                self.emit(word)
        elif word in CURRENCIES:
            if self.value is None:
                self.emit(word)
            else:  # "five dollars" -> "$5"
                self.prefix = CURRENCIES[word]
                self.emit(self.value)
        elif word in ("percent", "per"):
            return self.percent(word, after)
        elif after not in NUMBER_WORDS and not _is_digits(after):
            self.flush()  # no number can follow: the word is just a word
            self.emit(word)
        else:
            return self.joining(before, word, after)
        return 1

    def percent(self, word: str, after: str | None) -> int:
        if self.value is None:
            self.emit(word)
        elif word == "percent" or after == "cent":
            self.emit(f"{self.value}%")
            return 1 if word == "percent" else 2
        else:
            self.flush()
            self.emit(word)
        return 1

    def joining(self, before: str | None, word: str, after: str | None) -> int:
        if word == "and":
            if before not in SCALES:  # "hundred and five" joins; any other "and" is a word
                self.flush()
                self.emit(word)
        elif word in ("double", "triple"):
            if after in ONES or after in ZEROS:
                digit = str(ONES.get(after or "", 0))
                self.value = f"{self.value or ''}{digit * (2 if word == 'double' else 3)}"
                return 2
            self.flush()
            self.emit(word)
        elif after in DIGIT_WORDS or _is_digits(after):  # "point"
            self.value = f"{self.value or ''}."
        return 1


def _half(text: str) -> str:
    """ "two and a half" -> "two point five" (only after a number word)."""
    pieces = re.split(r"\band\s+a\s+half\b", text)
    kept = []
    for i, piece in enumerate(pieces):
        if not piece.strip():
            continue
        kept.append(piece)
        if i < len(pieces) - 1:
            last = piece.split()[-1]
            kept.append("point five" if last in DIGIT_WORDS or last in SCALES else "and a half")
    return " ".join(kept)


def _cents(match: re.Match[str]) -> str:
    return f"{match[1]}{match[2]}.{int(match[3]):02d}"


def normalize_numbers(text: str) -> str:
    """Spelled-out numbers in lowercase ``text`` as digits (see the module docstring)."""
    s = _half(text)
    s = re.sub(r"([a-z])([0-9])", r"\1 \2", s)  # "mp3" -> "mp 3"
    s = re.sub(r"([0-9])([a-z])", r"\1 \2", s)
    s = re.sub(r"([0-9])\s+(st|nd|rd|th|s)\b", r"\1\2", s)  # ... but "21st" and "1960s" stay
    s = " ".join(_NumberReader().read(s.split()))
    s = re.sub(r"([€£$])([0-9]+) (?:and )?¢([0-9]{1,2})\b", _cents, s)  # "$2 and ¢7" -> "$2.07"
    s = re.sub(r"[€£$]0.([0-9]{1,2})\b", lambda m: f"¢{int(m[1])}", s)  # "$0.07" -> "¢7"
    return re.sub(r"\b1(s?)\b", r"one\1", s)
