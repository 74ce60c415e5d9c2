"""The dashboard's five languages: every message translated, right-to-left Arabic, dates per
locale."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schema.web import i18n, messages


@pytest.mark.parametrize("language", i18n.LANGUAGES[1:])
def test_every_message_is_translated(language: str) -> None:
    # A message missing from a catalog would show in English: none may.
    assert messages.messages(), "no message extracted: the extractor is broken"
    assert messages.missing(language) == []


def test_translations_are_used_and_arabic_is_right_to_left() -> None:
    assert i18n.translations("fr").gettext("Sign in") == "Se connecter"
    assert i18n.translations("sw").gettext("Sign out") == "Toka"
    assert i18n.translations("ar").gettext("Sign in") == "تسجيل الدخول"
    assert i18n.RTL == {"ar"}


def test_dates_and_numbers_follow_the_locale() -> None:
    when = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    assert "mars" in i18n.Formats("fr").datetime(when)
    assert "Mac" in i18n.Formats("sw").datetime(when)
    assert i18n.Formats("fr").number(12345) == "12\u202f345"
    assert i18n.Formats("en").number(12345) == "12,345"


def test_the_browser_language_is_negotiated() -> None:
    assert i18n.negotiate("ar-EG,ar;q=0.9,en;q=0.5") == "ar"
    assert i18n.negotiate("de-DE,fr;q=0.5") == "fr"
    assert i18n.negotiate("de") == "en"
    assert i18n.negotiate(None) == "en"


def test_a_message_has_one_translation_per_language_across_catalogs() -> None:
    """Page families keep their own catalogs, merged at start (the last one wins): the same
    English message translated two ways would change with the merge order (a Swahili label
    changed when a later family's catalog arrived)."""
    from babel.messages.pofile import read_po

    from schema.web import i18n

    for language in i18n.LANGUAGES[1:]:
        seen: dict[str, tuple[str, str]] = {}
        for path in i18n.catalogs(language):
            with path.open("rb") as fh:
                for entry in read_po(fh, locale=language):
                    if not isinstance(entry.id, str) or not entry.id or not entry.string:
                        continue
                    first = seen.setdefault(entry.id, (path.name, str(entry.string)))
                    assert first[1] == entry.string, (language, entry.id, first,
                                                      (path.name, entry.string))
