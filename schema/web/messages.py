"""Every message the dashboard shows, as extracted from its templates and its Python (`N_`,
`_`): the catalogs must translate each (tests/test_web_i18n.py), and `python -m
schema.web.messages` writes the missing ones into each language's `new.po` for translators."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from schema.web import i18n

HERE = Path(__file__).parent
METHODS = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}


def messages() -> set[str]:
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(HERE), METHODS, OPTIONS, keywords={"_": None, "N_": None, "gettext": None,
                                                   "ngettext": (1, 2)}):
        if isinstance(message, tuple):
            found.update(m for m in message if m)
        elif message:
            found.add(message)
    return found


def translated(language: str) -> dict[str, str]:
    done: dict[str, str] = {}
    for path in i18n.catalogs(language):
        with path.open("rb") as fh:
            for entry in read_po(fh, locale=language):
                if not entry.id:
                    continue
                ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
                strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
                if all(strings):
                    for one in ids:
                        done[one] = strings[0]
    return done


def missing(language: str) -> list[str]:
    done = translated(language)
    return sorted(m for m in messages() if m not in done)


if __name__ == "__main__":
    for lang in i18n.LANGUAGES[1:]:
        todo = missing(lang)
        print(f"{lang}: {len(todo)} missing", file=sys.stderr)
        for message in todo:
            print(f"[{lang}] {message}")
