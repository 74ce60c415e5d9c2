"""The published figures as CSV, a printable HTML page and a PDF with charts.

Everything here reads recorded releases only: nothing is counted again, so an export can never
show more than was released. Percentages are computed from the rounded, published values."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence

from fpdf import FPDF

from app.monitoring.disclosure import TOTAL
from app.monitoring.service import Published

SUPPRESSED = "suppressed"
NO_DATA = "no data"


def label(code: str) -> str:
    return "Total" if code == TOTAL else code.replace("_", " ")


def shown(p: Published, row: str, col: str) -> str:
    """A figure as printed: the rounded count, 'suppressed', or 'no data' (never a zero for a
    region without a reporting mechanism)."""
    if row in p.no_data_rows:
        return NO_DATA
    value = p.value(row, col)
    return SUPPRESSED if value is None else str(value)


def percent(p: Published, row: str, col: str) -> str:
    """Share of the row's total, from the published (rounded) figures; blank when either is
    withheld or the total is zero."""
    value, total = p.value(row, col), p.value(row, TOTAL)
    if row in p.no_data_rows or value is None or not total or col == TOTAL:
        return ""
    return f"{round(100 * value / total)}%"


def to_csv(releases: Sequence[Published]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["table", "period", "row", "column", "women", "percent_of_row", "k", "base"])
    for p in releases:
        for r in (*p.rows, TOTAL):
            for c in (*p.cols, TOTAL):
                writer.writerow([p.table.name, p.period, r, c, shown(p, r, c), percent(p, r, c),
                                 p.k, p.base])
    return out.getvalue()


STYLE = """body{font-family:sans-serif;margin:2em;color:#111}table{border-collapse:collapse;
margin:1em 0 2em}th,td{border:1px solid #999;padding:.2em .5em;text-align:right}
th:first-child,td:first-child{text-align:left}.s{color:#777;font-style:italic}
.bar{display:inline-block;height:.8em;background:#2b6cb0}@media print{section{break-inside:avoid}}"""


def to_html(period: str, org: str, releases: Sequence[Published]) -> str:
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Monitoring report "
             f"{html.escape(period)}</title><style>{STYLE}</style></head><body>",
             f"<h1>Monitoring report {html.escape(period)}</h1>",
             f"<p>{html.escape(org)}. Counts are of women, not incidents; counts from 1 to K-1 "
             "are suppressed, with further cells where a total would reveal them; every count "
             "is rounded; percentages come from the rounded counts. A region without a "
             "reporting mechanism shows <em>no data</em>, never zero.</p>"]
    for p in releases:
        top = max([v for v in (p.value(r, TOTAL) for r in p.rows) if v] or [1])
        parts.append(f"<section><h2>{html.escape(p.table.title)}</h2><p>K = {p.k}, rounded to "
                     f"base {p.base}.</p><table><tr><th></th>"
                     + "".join(f"<th>{html.escape(label(c))}</th>" for c in (*p.cols, TOTAL))
                     + "<th>chart</th></tr>")
        for r in (*p.rows, TOTAL):
            cells = "".join(
                f"<td class=s>{shown(p, r, c)}</td>" if shown(p, r, c) in (SUPPRESSED, NO_DATA)
                else f"<td>{shown(p, r, c)}</td>" for c in (*p.cols, TOTAL))
            total = p.value(r, TOTAL)
            width = 0 if r == TOTAL or r in p.no_data_rows or not total else 200 * total // top
            parts.append(f"<tr><th>{html.escape(label(r))}</th>{cells}"
                         f"<td><span class=bar style='width:{width}px'></span></td></tr>")
        parts.append("</table></section>")
    parts.append("</body></html>")
    return "".join(parts)


def to_pdf(period: str, org: str, releases: Sequence[Published]) -> bytes:
    """A4 landscape, one table per page with a bar chart of the row totals (drawn, not an
    image library: fpdf2's own rectangles)."""
    pdf = FPDF(orientation="L", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_title(f"Monitoring report {period}")
    for p in releases:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 14)
        pdf.cell(0, 8, f"{p.table.title} - {period}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 8)
        pdf.cell(0, 5, f"{org}. Women, not incidents. K = {p.k}; rounded to base {p.base}; "
                       "'supp.' = suppressed.", new_x="LMARGIN", new_y="NEXT")
        cols = (*p.cols, TOTAL)
        first = 42.0
        width = min(18.0, (pdf.w - 2 * pdf.l_margin - first) / len(cols))
        pdf.set_font("Helvetica", "B", 6)
        pdf.cell(first, 6, "", border=1)
        for c in cols:
            pdf.cell(width, 6, label(c)[:14], border=1, align="C")
        pdf.ln()
        pdf.set_font("Helvetica", "", 7)
        for r in (*p.rows, TOTAL):
            pdf.cell(first, 5, label(r)[:28], border=1)
            for c in cols:
                text = shown(p, r, c)
                pdf.cell(width, 5, "supp." if text == SUPPRESSED else text, border=1, align="R")
            pdf.ln()
        _chart(pdf, p)
    return bytes(pdf.output())


def _chart(pdf: FPDF, p: Published) -> None:
    """Horizontal bars of the published row totals; suppressed and no-data rows labelled."""
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(0, 6, "Women per row (published totals)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 7)
    top = max([v for v in (p.value(r, TOTAL) for r in p.rows) if v] or [1])
    x0 = pdf.l_margin + 45
    for r in p.rows:
        y = pdf.get_y()
        pdf.cell(45, 5, label(r)[:30])
        total = p.value(r, TOTAL)
        if r in p.no_data_rows or total is None:
            pdf.cell(40, 5, NO_DATA if r in p.no_data_rows else "suppressed")
        else:
            pdf.set_fill_color(43, 108, 176)
            pdf.rect(x0, y + 1, 150 * total / top, 3, style="F")
            pdf.set_x(x0 + 152 * total / top)
            pdf.cell(15, 5, str(total))
        pdf.ln(5)
