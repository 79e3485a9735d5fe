"""The languages of the public pages (board, overlay, landing, commentator, statistics)
and of the PDFs: one JSON file per language in ``drem/leaderboard/translations/``.

Every file holds the same keys (``tests/leaderboard/test_i18n.py`` fails on a missing
one). Keys starting with ``_`` are not texts: ``_name`` is the language's own name (for
the switch), ``_decimal`` its decimal separator. Texts may hold ``{name}`` placeholders.
The browser gets the chosen language's texts in the page (:func:`texts`) and formats
dates and numbers with ``Intl`` in that language; the server formats times for the PDFs
with :func:`fmt_ms`.
"""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from pathlib import Path

TRANSLATIONS = Path(__file__).with_name("translations")

#: The languages, in the order of the switch; the first is the default.
LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr", "ja")
DEFAULT = LANGUAGES[0]


@cache
def texts(lang: str) -> dict[str, str]:
    """All texts of ``lang`` (one of :data:`LANGUAGES`; anything else gives English)."""
    if lang not in LANGUAGES:
        lang = DEFAULT
    return json.loads((TRANSLATIONS / f"{lang}.json").read_text(encoding="utf-8"))


def choose(value: str | None) -> str:
    """The language asked for (``?lang=``, case-insensitive) if drem has it, else English."""
    value = (value or "").strip().lower()[:5]
    return value if value in LANGUAGES else DEFAULT


def language_names() -> list[tuple[str, str]]:
    """``[(code, own name), ...]`` for a language switch."""
    return [(code, texts(code)["_name"]) for code in LANGUAGES]


def t(lang: str, key: str, **values) -> str:
    """The text ``key`` in ``lang`` with ``{placeholders}`` filled (English if the key is
    missing there, the key itself if it is missing everywhere)."""
    text = texts(lang).get(key) or texts(DEFAULT).get(key) or key
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def fmt_ms(ms: int | float | None, lang: str = DEFAULT) -> str:
    """A time in ms as the displays show it, with the language's decimal separator:
    ``83456`` -> ``1:23.456`` (``1:23,456`` in German); ``9123`` -> ``9.123``; None -> ``–``."""
    if ms is None:
        return "–"
    ms = round(ms)
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    minutes, rest = divmod(ms, 60_000)
    seconds, milli = divmod(rest, 1000)
    head = f"{minutes}:{seconds:02d}" if minutes else str(seconds)
    return f"{sign}{head}{texts(lang)['_decimal']}{milli:03d}"


def fmt_number(value: float, lang: str = DEFAULT, decimals: int = 2) -> str:
    """``value`` with ``decimals`` decimals and the language's decimal separator."""
    return f"{value:.{decimals}f}".replace(".", texts(lang)["_decimal"])


def fmt_date(day: date, lang: str = DEFAULT) -> str:
    """A date as the language writes it: 2026-11-22 -> ``22 Nov 2026`` (en), ``22.11.2026``
    (de), ``22/11/2026`` (es, fr), ``2026年11月22日`` (ja)."""
    if lang == "de":
        return f"{day.day:02d}.{day.month:02d}.{day.year}"
    if lang in ("es", "fr"):
        return f"{day.day:02d}/{day.month:02d}/{day.year}"
    if lang == "ja":
        return f"{day.year}年{day.month}月{day.day}日"
    return day.strftime("%d %b %Y")
