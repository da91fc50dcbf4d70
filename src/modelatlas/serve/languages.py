"""Whisper's languages: ISO codes (what a model detects and a client may send) and their names.

OpenAI's transcription API takes ``language`` as an ISO-639-1 code ("en") and its
``verbose_json`` answer names the language in lowercase English ("english"), so the server
maps one to the other. The table is Whisper's own list of 99 languages plus Cantonese ("yue",
added with large-v3); tests/test_serve_transcriptions.py checks it against faster-whisper's
codes and transformers' names for Whisper.
"""

from __future__ import annotations

from modelatlas.errors import InvalidRequestError

NAMES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian", "mk": "macedonian",
    "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian", "ne": "nepali",
    "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer",
    "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan",
    "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi", "gu": "gujarati",
    "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek", "fo": "faroese",
    "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala",
    "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # fmt: skip
_CODES = {name: code for code, name in NAMES.items()}


def name_of(code: str | None) -> str | None:
    """The lowercase English name of a language code ("en" -> "english"); an unknown code as
    it is (a hosted model may detect one outside Whisper's list)."""
    if code is None:
        return None
    return NAMES.get(code.lower(), code)


def code_of(language: str | None) -> str | None:
    """The ISO code of a ``language`` a client sent: a code ("en", "EN") or, leniently, a name
    ("english"); a 400 naming the parameter for anything else."""
    if language is None or not language.strip():
        return None
    given = language.strip().lower()
    if given in NAMES:
        return given
    if given in _CODES:
        return _CODES[given]
    raise InvalidRequestError(
        f"Invalid value for 'language': {language!r} is not a language Whisper knows.",
        hint="Send an ISO-639-1 code such as 'en', 'fr' or 'de', or leave it out to detect the language.",
        param="language",
    )
