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
from collections.abc import Callable, Iterable, Mapping, Sequence
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
# No count of women exceeds this: a withheld figure nothing else bounds is "up to CAP", a finite
# bound (HiGHS's presolve can report an unbounded programme as infeasible).
CAP = 10_000_000.0


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
    """What was published of one table for one period (the record the checks run on).

    `series` says who released it (an organisation); `population` the women counted in it
    (opaque digests, never served), so releases of other organisations or tables over
    overlapping populations can be combined: what one figure says about another is bounded by
    the women one counts and the other does not. None: unknown (a record from before), taken
    as the same women as the series' other releases."""

    table: str
    period: Period
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    figures: Mapping[Key, int | None]
    series: str = ""
    population: frozenset[str] | None = None


Shared = Mapping[str, Mapping[Key, str]]
"""Per table, the entries that count a quantity other tables count too (say, women with a
threat in the period: a column total of the region table and a row total of the type table)."""


def quantity(table: str, key: Key, shared: Shared) -> str | None:
    return shared.get(table, {}).get(key)


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


def _within(a: Release, b: Release) -> bool:
    """a's period is b's or lies inside it: every woman a counts in an entry, b counts in the
    same entry too, if b counts her at all."""
    return a.period == b.period or b.period.contains(a.period)


def _comparable(a: Release, b: Release) -> bool:
    """The same organisation's releases, or releases known to count some of the same women
    (the published figures are public: whoever released them, they can be combined)."""
    if a.series == b.series:
        return True
    return a.population is not None and b.population is not None and not (
        a.population.isdisjoint(b.population))


def _share(table_a: str, table_b: str, shared: Shared) -> bool:
    return table_a == table_b or not set(shared.get(table_a, {}).values()).isdisjoint(
        shared.get(table_b, {}).values())


def _pairs(a: Release, b: Release, shared: Shared) -> list[tuple[Key, Key]]:
    """Entries of a and b that count the same thing of the same women (a's period within b's)."""
    if not _within(a, b) or a is b or not _comparable(a, b):
        return []
    if a.table == b.table:
        return [(key, key) for key in all_keys(a.rows, a.cols)]
    theirs: dict[str, list[Key]] = {}
    for key, q in shared.get(b.table, {}).items():
        theirs.setdefault(q, []).append(key)
    return [(key, other) for key, q in shared.get(a.table, {}).items()
            for other in theirs.get(q, ())]


def _slack(a: Release, b: Release) -> float:
    """How far an entry of a can exceed the same entry of b (a's period within b's): the women
    a counts and b does not (consent given to one organisation and not the other, or changed
    between the releases). Unknown populations (older records) of one organisation: none."""
    if a.population is None or b.population is None:
        return 0.0
    return float(len(a.population - b.population))


class Inconsistent(Exception):
    """The releases contradict each other: populations changed between them (consent given or
    withdrawn) in a way the figures show."""


def connected(releases: Sequence[Release], start: int, shared: Shared | None = None,
              ) -> list[int]:
    """The releases linked to `releases[start]` through entries that bound one another (nested
    or equal periods; the same table, or a quantity two tables share; the same organisation or
    overlapping populations): the only ones whose figures can narrow, or be narrowed by, it."""
    shared = shared or {}
    seen = {start}
    todo = [start]
    while todo:
        i = todo.pop()
        for j, other in enumerate(releases):
            a = releases[i]
            if j not in seen and (_within(a, other) or _within(other, a)) and _share(
                    a.table, other.table, shared) and _comparable(a, other):
                seen.add(j)
                todo.append(j)
    return sorted(seen)


def narrow_cells(releases: Sequence[Release], *, k: int = K, base: int = BASE,
                 shared: Shared | None = None) -> list[tuple[int, Key, float, float]]:
    """Suppressed cells whose range of values consistent with all `releases` is narrower than
    K: (release index, key, low, high). An inconsistent set is reported as one narrow entry
    with index -1: publishing it would reveal that a woman's consent changed."""
    try:
        found = ranges(releases, k=k, base=base, shared=shared, exact=False)
    except Inconsistent:
        return [(-1, (TOTAL, TOTAL), math.nan, math.nan)]
    return [(i, key, lo, hi) for (i, key), (lo, hi) in found.items() if hi - lo < k - 1e-6]


class _Programme:
    """The constraint matrix, built once; each range is two objectives over it (HiGHS)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.rhs: list[float] = []

    def at_most(self, small: Sequence[int], big: Sequence[int], slack: float = 0.0) -> None:
        """sum(small) - sum(big) <= slack."""
        row = len(self.rhs)
        for v in small:
            self.rows.append(row)
            self.cols.append(v)
            self.vals.append(1.0)
        for v in big:
            self.rows.append(row)
            self.cols.append(v)
            self.vals.append(-1.0)
        self.rhs.append(slack)

    def solver(self, bounds: np.ndarray) -> Callable[[np.ndarray], tuple[float, np.ndarray | None]]:
        m = max(len(self.rhs), 1)
        a_ub = coo_matrix((self.vals, (self.rows, self.cols)), shape=(m, self.n)).tocsr()
        b_ub = np.zeros(m)
        b_ub[:len(self.rhs)] = self.rhs

        def minimise(cost: np.ndarray) -> tuple[float, np.ndarray | None]:
            res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
            if res.status == 2:
                raise Inconsistent()
            if res.status == 3:
                return -math.inf, None
            if res.status != 0:
                raise RuntimeError(f"linear programme failed: {res.message}")
            return float(res.fun), res.x
        return minimise


def ranges(releases: Sequence[Release], *, k: int = K, base: int = BASE,
           shared: Shared | None = None, exact: bool = True,
           ) -> dict[tuple[int, Key], tuple[float, float]]:
    """For every suppressed cell of `releases` (any tables, organisations, periods), the
    smallest and largest value consistent with everything published (the LP relaxation: an
    integer range is never wider). Raises Inconsistent when nothing is.

    With `exact=False` a cell is settled without its own programmes when two consistent points
    already found (solutions of earlier programmes) are K apart: its range is at least that
    wide, which is all the check needs (the figures returned are then an inner bound); only
    cells that may be narrow are solved exactly."""
    shared = shared or {}
    index: dict[tuple[int, Key], int] = {}
    lower: list[float] = []
    upper: list[float] = []
    for i, rel in enumerate(releases):
        for key in all_keys(rel.rows, rel.cols):
            index[(i, key)] = len(lower)
            lo, hi = interval(rel.figures.get(key), k, base)
            lower.append(lo)
            upper.append(CAP if hi is None else hi)
    lp = _Programme(len(lower))
    for i, rel in enumerate(releases):
        for total, members in lines(rel.rows, rel.cols):
            t = index[(i, total)]
            ms = [index[(i, m)] for m in members]
            for m in ms:
                lp.at_most([m], [t])
            lp.at_most([t], ms)
    for i, a in enumerate(releases):
        for j, b in enumerate(releases):
            if i != j:
                pairs = _pairs(a, b, shared)
                slack = _slack(a, b) if pairs else 0.0
                for ka, kb in pairs:
                    if (i, ka) in index and (j, kb) in index:
                        lp.at_most([index[(i, ka)]], [index[(j, kb)]], slack)
    # A total is at most the sum of its parts: within one organisation's series of a table.
    series: dict[tuple[str, str], dict[Period, int]] = {}
    for i, rel in enumerate(releases):
        series.setdefault((rel.series, rel.table), {})[rel.period] = i
    for by_period in series.values():
        released = set(by_period)
        for period, i in by_period.items():
            a = releases[i]
            for split in parts_of(period, released):
                pieces = [by_period[p] for p in split]
                slack = 0.0
                if a.population is not None and all(releases[j].population is not None
                                                     for j in pieces):
                    union: set[str] = set()
                    for j in pieces:
                        union |= releases[j].population or frozenset()
                    slack = float(len(a.population - union))
                for key in all_keys(a.rows, a.cols):
                    parts = [index[(j, key)] for j in pieces if (j, key) in index]
                    if len(parts) == len(pieces):
                        lp.at_most([index[(i, key)]], parts, slack)
    bounds = np.array([lower, upper]).T
    minimise = lp.solver(bounds)
    targets = [(cell, v) for cell, v in index.items()
               if releases[cell[0]].figures.get(cell[1], 0) is None]
    witnesses: list[np.ndarray] = []
    if not exact and targets:
        # Two consistent points with every withheld cell pushed up, then down: most cells are
        # then already seen K apart.
        push = np.zeros(len(lower))
        push[[v for _, v in targets]] = -1.0
        for sign in (1.0, -1.0):
            _, x = minimise(sign * push)
            if x is not None:
                witnesses.append(x)
    found: dict[tuple[int, Key], tuple[float, float]] = {}
    for cell, v in targets:
        if witnesses:
            seen = [float(w[v]) for w in witnesses]
            if max(seen) - min(seen) >= k - 1e-6 and not exact:
                found[cell] = (min(seen), max(seen))
                continue
        cost = np.zeros(len(lower))
        cost[v] = 1.0
        low, x_low = minimise(cost)
        if x_low is not None:
            witnesses.append(x_low)
        if not exact and max(float(w[v]) for w in witnesses) - low >= k - 1e-6:
            found[cell] = (low, max(float(w[v]) for w in witnesses))
            continue
        cost[v] = -1.0
        neg_high, x_high = minimise(cost)
        if x_high is not None:
            witnesses.append(x_high)
        found[cell] = (low, -neg_high)
    return found
