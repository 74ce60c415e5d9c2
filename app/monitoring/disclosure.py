"""Statistical disclosure control for published tables (invariant 7; decision 0033).

Pure functions, no database: a table is a map from a key (row, column) to a count of women,
totals included (`TOTAL` stands for "all"). `protect` suppresses and rounds one table;
`narrow_cells` says which suppressed cells an outsider could pin down to a range narrower than
K by combining everything released (linear programming over what the figures imply).

The unit is the person, so a total is not the sum of its cells (one woman can stand in two
cells): a total is at least its largest cell and at most the sum of its cells. Those are the
only relations an outsider can rely on, and the ones the programme uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

TOTAL = "*"
Key = tuple[str, str]
Figures = dict[Key, int | None]  # None: suppressed

K = 5  # smallest published count of women (1..K-1 suppressed)
BASE = 5  # published counts are rounded to a multiple of this


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month, quarter or year (no free windows: they could be subtracted)."""

    start: date
    end: date  # exclusive
    kind: str  # month, quarter, year
    label: str

    def contains(self, other: Period) -> bool:
        return self.start <= other.start and other.end <= self.end and self != other


def _next_month(d: date, months: int) -> date:
    m = d.month - 1 + months
    return date(d.year + m // 12, m % 12 + 1, 1)


def parse_period(label: str) -> Period:
    """'2026', '2026-Q2' or '2026-04'; anything else raises ValueError."""
    text = label.strip().upper()
    if not text.isascii():  # other digits would parse to the same period under another label
        raise ValueError(label)
    parts = text.split("-")
    if not parts[0].isdigit() or len(parts[0]) != 4 or len(parts) > 2:
        raise ValueError(label)
    year = int(parts[0])
    if year < 1900:
        raise ValueError(label)
    if len(parts) == 1:
        return Period(date(year, 1, 1), date(year + 1, 1, 1), "year", f"{year}")
    tail = parts[1]
    if tail.startswith("Q") and tail[1:] in ("1", "2", "3", "4"):
        start = date(year, 3 * (int(tail[1:]) - 1) + 1, 1)
        return Period(start, _next_month(start, 3), "quarter", f"{year}-{tail}")
    if tail.isdigit() and len(tail) == 2 and 1 <= int(tail) <= 12:
        start = date(year, int(tail), 1)
        return Period(start, _next_month(start, 1), "month", f"{year}-{tail}")
    raise ValueError(label)


def parts_of(period: Period, released: set[Period]) -> list[list[Period]]:
    """The ways a period splits into smaller declared periods that were all released (for
    "a total is at most the sum of its parts"): its months, its quarters, or each quarter
    either whole or as its months."""
    if period.kind == "month":
        return []
    y = period.start.year
    first = period.start.month

    def months(start_month: int, n: int) -> list[Period]:
        return [parse_period(f"{y}-{m:02d}") for m in range(start_month, start_month + n)]

    if period.kind == "quarter":
        splits = [months(first, 3)]
    else:
        quarters = [parse_period(f"{y}-Q{q}") for q in range(1, 5)]
        mixed = [p for q in quarters for p in ([q] if q in released else months(q.start.month, 3))]
        splits = [months(1, 12), quarters, mixed]
    return [s for s in splits if all(p in released for p in s)]


def round_to(value: int, base: int = BASE) -> int:
    """Round half up to a multiple of `base`."""
    return base * ((value + base // 2) // base)


def interval(published: int | None, k: int = K, base: int = BASE) -> tuple[float, float | None]:
    """What a published figure says about the true count: a rounded value stands for the
    counts that round to it and are at least K; a suppressed one for at least 1 (a suppressed
    cell is never empty: zeros are published, and complementary suppression picks non-empty
    cells); a zero is exact."""
    if published is None:
        return 1.0, None
    if published == 0:
        return 0.0, 0.0
    return float(max(published - base // 2, k)), float(published + (base - 1) // 2)


def lines(rows: Sequence[str], cols: Sequence[str]) -> list[tuple[Key, list[Key]]]:
    """Each total with the entries it gathers: rows, columns, and the grand total (both ways)."""
    out: list[tuple[Key, list[Key]]] = []
    for r in rows:
        out.append(((r, TOTAL), [(r, c) for c in cols]))
    for c in cols:
        out.append(((TOTAL, c), [(r, c) for r in rows]))
    out.append(((TOTAL, TOTAL), [(r, TOTAL) for r in rows]))
    out.append(((TOTAL, TOTAL), [(TOTAL, c) for c in cols]))
    return out


def all_keys(rows: Sequence[str], cols: Sequence[str]) -> list[Key]:
    return [(r, c) for r in (*rows, TOTAL) for c in (*cols, TOTAL)]


@dataclass(frozen=True)
class Release:
    """What was published of one table for one period (the record the checks run on)."""

    table: str
    period: Period
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    figures: Mapping[Key, int | None]


def protect(true: Mapping[Key, int], rows: Sequence[str], cols: Sequence[str], *,
            k: int = K, base: int = BASE) -> Figures:
    """Primary suppression (1..K-1), complementary suppression (no line with exactly one
    suppressed entry, then until the table alone passes the range check), rounding."""
    keys = all_keys(rows, cols)
    hidden = {key for key in keys if 1 <= true.get(key, 0) < k}
    line_sets = [[total, *members] for total, members in lines(rows, cols)]

    def cascades(x: Key) -> bool:
        """Hiding x leaves another of its lines with a single hidden entry."""
        return any(x in line and not any(y in hidden for y in line if y != x)
                   for line in line_sets)

    def hide_one_more(candidates: Iterable[Key]) -> bool:
        # Prefer an entry whose other lines already hide something (no new lone cell), then
        # the smallest count (least information lost).
        options = sorted((cascades(x), true.get(x, 0), x) for x in candidates
                         if x not in hidden and true.get(x, 0) > 0)
        if not options:
            return False
        hidden.add(options[0][2])
        return True

    for _ in range(len(keys)):
        changed = False
        for line in line_sets:
            if sum(x in hidden for x in line) == 1:
                changed |= hide_one_more(line)
        if not changed:
            break

    def figures() -> Figures:
        return {key: None if key in hidden else round_to(true.get(key, 0), base) for key in keys}

    for _ in range(len(keys)):
        release = Release("t", parse_period("2000"), tuple(rows), tuple(cols), figures())
        narrow = narrow_cells([release], k=k, base=base)
        if not narrow:
            break
        _, (r, c), _, _ = narrow[0]
        if not hide_one_more([x for line in line_sets if (r, c) in line for x in line]):
            break
    return figures()


def _related(a: Release, b: Release) -> int:
    """1 when a's period contains b's, -1 the other way round, 0 when unrelated."""
    if a.period.contains(b.period):
        return 1
    if b.period.contains(a.period):
        return -1
    return 0


class Inconsistent(Exception):
    """The releases contradict each other: populations changed between them (consent given or
    withdrawn) in a way the figures show."""


def connected(releases: Sequence[Release], start: int) -> list[int]:
    """The releases linked to `releases[start]` through periods that contain one another: the
    only ones whose figures can narrow, or be narrowed by, it (indices, in order)."""
    seen = {start}
    todo = [start]
    while todo:
        i = todo.pop()
        for j, other in enumerate(releases):
            if j not in seen and _related(releases[i], other):
                seen.add(j)
                todo.append(j)
    return sorted(seen)


def narrow_cells(releases: Sequence[Release], *, k: int = K, base: int = BASE,
                 ) -> list[tuple[int, Key, float, float]]:
    """Suppressed cells whose range of values consistent with all `releases` (of one table) is
    narrower than K: (release index, key, low, high). An inconsistent set is reported as one
    narrow entry with index -1: publishing it would reveal that a woman's consent changed."""
    try:
        found = ranges(releases, k=k, base=base)
    except Inconsistent:
        return [(-1, (TOTAL, TOTAL), math.nan, math.nan)]
    return [(i, key, lo, hi) for (i, key), (lo, hi) in found.items() if hi - lo < k - 1e-6]


def ranges(releases: Sequence[Release], *, k: int = K, base: int = BASE,
           ) -> dict[tuple[int, Key], tuple[float, float]]:
    """For every suppressed cell of `releases` (one table, any periods), the smallest and
    largest value consistent with everything published (the LP relaxation: an integer range
    is never wider). Raises Inconsistent when nothing is."""
    index: dict[tuple[int, Key], int] = {}
    lower: list[float] = []
    upper: list[float | None] = []
    for i, rel in enumerate(releases):
        for key in all_keys(rel.rows, rel.cols):
            index[(i, key)] = len(lower)
            lo, hi = interval(rel.figures.get(key), k, base)
            lower.append(lo)
            upper.append(hi)
    rows_a: list[int] = []
    cols_a: list[int] = []
    vals: list[float] = []
    n_con = 0

    def at_most(small: list[int], big: list[int]) -> None:  # sum(small) - sum(big) <= 0
        nonlocal n_con
        for v in small:
            rows_a.append(n_con)
            cols_a.append(v)
            vals.append(1.0)
        for v in big:
            rows_a.append(n_con)
            cols_a.append(v)
            vals.append(-1.0)
        n_con += 1

    for i, rel in enumerate(releases):
        for total, members in lines(rel.rows, rel.cols):
            t = index[(i, total)]
            ms = [index[(i, m)] for m in members]
            for m in ms:
                at_most([m], [t])
            at_most([t], ms)
    by_period = {rel.period: i for i, rel in enumerate(releases)}
    released = set(by_period)
    for i, a in enumerate(releases):
        for j, b in enumerate(releases):
            if _related(a, b) == 1:  # a's period holds b's: a's women include b's
                for key in all_keys(a.rows, a.cols):
                    if (j, key) in index:
                        at_most([index[(j, key)]], [index[(i, key)]])
        for split in parts_of(a.period, released):
            pieces = [by_period[p] for p in split]
            for key in all_keys(a.rows, a.cols):
                parts = [index[(j, key)] for j in pieces if (j, key) in index]
                if len(parts) == len(pieces):
                    at_most([index[(i, key)]], parts)
    n = len(lower)
    a_ub = coo_matrix((vals, (rows_a, cols_a)), shape=(max(n_con, 1), n)).tocsr()
    b_ub = np.zeros(max(n_con, 1))
    bounds = list(zip(lower, upper, strict=True))
    found: dict[tuple[int, Key], tuple[float, float]] = {}
    for (i, key), v in index.items():
        if releases[i].figures.get(key, 0) is not None:
            continue
        cost = np.zeros(n)
        cost[v] = 1.0
        low = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
        if low.status == 2:
            raise Inconsistent()
        cost[v] = -1.0
        high = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
        if high.status == 2:
            raise Inconsistent()
        if high.status not in (0, 3):
            raise RuntimeError(f"linear programme failed: {high.message}")
        top = math.inf if high.status == 3 else -float(high.fun)
        found[(i, key)] = (float(low.fun), top)
    return found
