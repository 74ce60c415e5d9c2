"""The dashboard's languages: English, French, Spanish, Arabic (right to left) and Swahili,
the consent receipt's languages. Catalogs are Babel `.po` files, one per page family
(`locale/<lang>/<family>.po`), compiled in memory when the app starts; dates and numbers follow
the locale (CLDR through Babel). tests/test_web_i18n.py checks that every message of every
template and page has a translation in every language, so none falls back to English."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "fr", "es", "ar", "sw")
NAMES = {"en": "English", "fr": "Français", "es": "Español", "ar": "العربية", "sw": "Kiswahili"}
RTL = frozenset({"ar"})
LOCALE_DIR = Path(__file__).parent / "locale"


def negotiate(accept_language: str | None) -> str:
    """The browser's preferred language among ours (before she signs in), else English."""
    wanted = []
    for part in (accept_language or "").split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        wanted.append((weight, tag.strip()))
    for _, tag in sorted(wanted, key=lambda w: -w[0]):
        base = tag.split("-")[0].lower()
        if base in LANGUAGES:
            return base
    return "en"


def catalogs(language: str) -> Iterable[Path]:
    return sorted((LOCALE_DIR / language).glob("*.po"))


@cache
def translations(language: str) -> NullTranslations:
    if language not in LANGUAGES or language == "en":
        return NullTranslations()
    merged: Translations | None = None
    for path in catalogs(language):
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=language)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        found = Translations(fp=buf)
        if merged is None:
            merged = found
        else:
            merged.merge(found)
    return merged or NullTranslations()


class Formats:
    """Dates, durations and numbers in one language."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.locale = Locale.parse(language)

    def datetime(self, value: str | datetime | None, *, short: bool = False) -> str:
        if value is None or value == "":
            return ""
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
        return format_datetime(when, "short" if short else "medium", tzinfo=None,
                               locale=self.locale)

    def number(self, value: float | int | None) -> str:
        return "" if value is None else format_decimal(value, locale=self.locale)

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return ""
        return format_timedelta(seconds, locale=self.locale, threshold=1.1)
