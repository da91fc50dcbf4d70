"""The languages Whisper knows: its codes (ISO-639-1, plus ``haw`` and ``yue``) and the English
names OpenAI's ``verbose_json`` answers with ("english").

A Transcript holds the code; the API's verbose_json holds the name. Both directions go through
this one table, so a transcript read from a server and one written by `modelatlas serve` agree.
"""

from __future__ import annotations

__all__ = ["LANGUAGES", "code_of", "name_of"]

_TABLE = """
en english|zh chinese|de german|es spanish|ru russian|ko korean|fr french|ja japanese|pt portuguese
tr turkish|pl polish|ca catalan|nl dutch|ar arabic|sv swedish|it italian|id indonesian|hi hindi
fi finnish|vi vietnamese|he hebrew|uk ukrainian|el greek|ms malay|cs czech|ro romanian|da danish
hu hungarian|ta tamil|no norwegian|th thai|ur urdu|hr croatian|bg bulgarian|lt lithuanian|la latin
mi maori|ml malayalam|cy welsh|sk slovak|te telugu|fa persian|lv latvian|bn bengali|sr serbian
az azerbaijani|sl slovenian|kn kannada|et estonian|mk macedonian|br breton|eu basque|is icelandic
hy armenian|ne nepali|mn mongolian|bs bosnian|kk kazakh|sq albanian|sw swahili|gl galician
mr marathi|pa punjabi|si sinhala|km khmer|sn shona|yo yoruba|so somali|af afrikaans|oc occitan
ka georgian|be belarusian|tg tajik|sd sindhi|gu gujarati|am amharic|yi yiddish|lo lao|uz uzbek
fo faroese|ht haitian creole|ps pashto|tk turkmen|nn nynorsk|mt maltese|sa sanskrit
lb luxembourgish|my myanmar|bo tibetan|tl tagalog|mg malagasy|as assamese|tt tatar|haw hawaiian
ln lingala|ha hausa|ba bashkir|jw javanese|su sundanese|yue cantonese
"""

# code -> English name, in Whisper's order.
LANGUAGES: dict[str, str] = dict(
    entry.split(" ", 1) for line in _TABLE.strip().splitlines() for entry in line.split("|")
)
_CODES = {name: code for code, name in LANGUAGES.items()}


def code_of(language: str) -> str:
    """The code of a language given by code or by English name; an unknown one as given, lower-cased."""
    key = language.strip().lower()
    return key if key in LANGUAGES else _CODES.get(key, key)


def name_of(code: str) -> str:
    """The English name of a language code (the code itself when Whisper does not know it)."""
    key = code.strip().lower()
    return LANGUAGES.get(key, key)
