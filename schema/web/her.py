"""Her own page: her cases, who saw her data, her grants, her notices."""

from __future__ import annotations

from starlette.responses import Response

from schema.web.core import Visit, render
from schema.web.pages import VIEWER


async def me(visit: Visit) -> Response:
    answer = await visit.query("query { " + VIEWER + " me { cases { id status } } }")
    data = answer.data or {}
    return render(visit.request, "me.html", language=visit.language, visit=visit,
                  viewer=data.get("viewer"), me=data.get("me") or {}, answer=answer)
