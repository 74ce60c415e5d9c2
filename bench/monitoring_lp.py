"""How long the differencing check takes (issue 20, decision 0033): a year of the region table
released after its 12 months and 4 quarters, on synthetic data. Prints figures; asserts nothing.

    .venv/bin/python bench/monitoring_lp.py [--women 300] [--seed 7] [--repeat 3]

The data: `--women` women, each with 1-3 incidents on random months of one year, in the demo's
6 region rows x 9 incident types (skewed, so many cells are small and get suppressed). Every
month and quarter is protected and checked in order (refused ones are left out, as the service
does), then the year; the table prints the year's check and the worst month/quarter check.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.monitoring import disclosure
from app.monitoring.disclosure import TOTAL, Release, parse_period

ROWS = ("KE-NBI", "KE-MSA", "KE-KSM", "KE-GRS", "KE-TUR", "not_recorded")
COLS = ("physical", "online_harassment", "legal_harassment", "criminalisation", "surveillance",
        "threats_to_family", "detention", "sexual_violence", "smear_campaign")


def synthetic(women: int, seed: int) -> list[tuple[int, int, str, str]]:
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not a secret
    out = []
    for w in range(women):
        for _ in range(rng.choice((1, 1, 2, 3))):
            out.append((w, rng.randrange(12), rng.choices(ROWS, (8, 4, 3, 2, 1, 1))[0],
                        rng.choices(COLS, (6, 8, 3, 2, 2, 2, 1, 1, 3))[0]))
    return out


def true_counts(entries, months: set[int]) -> dict:
    sets: dict = {}
    for w, m, r, c in entries:
        if m in months:
            for key in ((r, c), (r, TOTAL), (TOTAL, c), (TOTAL, TOTAL)):
                sets.setdefault(key, set()).add(w)
    return {k: len(v) for k, v in sets.items()}


def population(entries, months: set[int]) -> frozenset[str]:
    return frozenset(str(w) for w, m, _, _ in entries if m in months)


SOLVED = [0]
_linprog = disclosure.linprog


def _counting(*args, **kwargs):  # type: ignore[no-untyped-def]
    SOLVED[0] += 1
    return _linprog(*args, **kwargs)


disclosure.linprog = _counting  # count the programmes solved (this process only)


def run(women: int, seed: int) -> dict:
    entries = synthetic(women, seed)
    labels = [(f"2025-{m + 1:02d}", {m}) for m in range(12)]
    labels += [(f"2025-Q{q + 1}", {3 * q, 3 * q + 1, 3 * q + 2}) for q in range(4)]
    labels += [("2025", set(range(12)))]
    accepted: list[Release] = []
    timings = []
    refused = 0
    for label, months in labels:
        figures = disclosure.protect(true_counts(entries, months), ROWS, COLS)
        kwargs = {}
        if "population" in Release.__dataclass_fields__:
            kwargs = {"series": "org", "population": population(entries, months)}
        new = Release("incidents_by_region", parse_period(label), ROWS, COLS, figures, **kwargs)
        linked = [*accepted, new]
        linked = [linked[i] for i in disclosure.connected(linked, len(linked) - 1)]
        hidden = sum(sum(v is None for v in r.figures.values()) for r in linked)
        SOLVED[0] = 0
        t0 = time.perf_counter()
        narrow = disclosure.narrow_cells(linked)
        timings.append((label, time.perf_counter() - t0, hidden, SOLVED[0]))
        if narrow:
            refused += 1
        else:
            accepted.append(new)
    year = timings[-1]
    worst = max(timings[:-1], key=lambda t: t[1])
    hidden = sum(sum(v is None for v in r.figures.values()) for r in accepted)
    return {"year_s": year[1], "worst_s": worst[1], "worst": worst[0], "refused": refused,
            "accepted": len(accepted), "hidden": hidden, "year_hidden": year[2],
            "year_solved": year[3],
            "total_s": sum(t[1] for t in timings)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--women", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    runs = [run(args.women, args.seed) for _ in range(args.repeat)]
    last = runs[-1]
    print(f"differencing check, region table {len(ROWS)}x{len(COLS)}, {args.women} women, "
          f"seed {args.seed}, {args.repeat} runs (median)")
    print(f"  releases accepted {last['accepted']} of 17, refused {last['refused']}, "
          f"suppressed cells across accepted releases {last['hidden']}")
    print(f"  year check after 12 months + 4 quarters: "
          f"{statistics.median(r['year_s'] for r in runs):.2f} s")
    print(f"  linear programmes solved for the year: {last['year_solved']} (two per withheld "
          f"cell of the 17 releases linked: {2 * last['year_hidden']})")
    print(f"  slowest month/quarter check ({last['worst']}): "
          f"{statistics.median(r['worst_s'] for r in runs):.2f} s")
    print(f"  all 17 checks: {statistics.median(r['total_s'] for r in runs):.2f} s")


if __name__ == "__main__":
    main()
