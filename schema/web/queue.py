"""My organisation's queue: what needs someone's attention now."""

from __future__ import annotations

from starlette.responses import Response

from schema.web.core import Visit, render
from schema.web.pages import VIEWER

QUEUE = """query Queue {
  VIEWER
  cases(first: 50, filter: {status: OPEN}) {
    edges { node { id status riskLevel openedAt updatedAt
      incidents { id type severity status acknowledgementDeadline acknowledgedAt } } }
  }
}""".replace("VIEWER", VIEWER)


async def queue(visit: Visit) -> Response:
    answer = await visit.query(QUEUE)
    data = answer.data or {}
    cases = [edge["node"] for edge in ((data.get("cases") or {}).get("edges") or [])]
    return render(visit.request, "queue.html", language=visit.language, visit=visit,
                  viewer=data.get("viewer"), cases=cases, answer=answer)
