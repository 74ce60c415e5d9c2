"""`python -m schema export [PATH]`: write the SDL partner agencies build their clients against."""

from __future__ import annotations

import sys
from pathlib import Path

from schema.schema import schema

DEFAULT = Path(__file__).resolve().parent / "schema.graphql"


def sdl() -> str:
    return schema.as_str().rstrip() + "\n"


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "export":
        print("usage: python -m schema export [PATH]")
        return 2
    target = Path(argv[1]) if len(argv) > 1 else DEFAULT
    target.write_text(sdl(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
