"""The ``language`` of a transcription request, as OpenAI's API takes and gives it.

The API takes an ISO-639-1 code ("en") and its ``verbose_json`` answer names the language in
lowercase English ("english"). The table is :mod:`modelatlas.speech_languages` (Whisper's
list, shared with the openai backend, which reads names back from hosted answers); this module
adds the server's rule: a language the table does not know is a 400 naming the parameter.
"""

from __future__ import annotations

from modelatlas.errors import InvalidRequestError
from modelatlas.speech_languages import LANGUAGES
from modelatlas.speech_languages import code_of as _lenient_code

__all__ = ["code_of", "name_of"]


def name_of(code: str | None) -> str | None:
    """The lowercase English name of a language code ("en" -> "english"); an unknown code as
    it is (a hosted model may detect one outside Whisper's list)."""
    if code is None:
        return None
    return LANGUAGES.get(code.lower(), code)


def code_of(language: str | None) -> str | None:
    """The ISO code of a ``language`` a client sent: a code ("en", "EN") or, leniently, a name
    ("english"); a 400 naming the parameter for anything else."""
    if language is None or not language.strip():
        return None
    code = _lenient_code(language)
    if code in LANGUAGES:
        return code
    raise InvalidRequestError(
        f"Invalid value for 'language': {language!r} is not a language Whisper knows.",
        hint="Send an ISO-639-1 code such as 'en', 'fr' or 'de', or leave it out to detect the language.",
        param="language",
    )
