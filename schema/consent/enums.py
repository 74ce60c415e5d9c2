"""GraphQL enums of the consent vocabulary (defined once in app/consent/categories.py)."""

from __future__ import annotations

import strawberry

from app.consent import categories

DataCategory = strawberry.enum(categories.DataCategory, description="A category of her data.")
Purpose = strawberry.enum(categories.Purpose, description=(
    "Why data is accessed; declared per request in the Safety-Net-Purpose header. There is no "
    "intelligence-gathering purpose."))
ObtainedVia = strawberry.enum(categories.ObtainedVia, description="How her consent was obtained.")
