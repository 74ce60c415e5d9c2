"""The published SDL and the category map: contracts partner agencies and consent rely on."""

from __future__ import annotations

from pathlib import Path

from app.models import Base
from app.tables.categories import PROFILE_FIELDS, DataCategory
from schema.__main__ import DEFAULT, sdl
from schema.peacebuilders.types import PeacebuilderProfileInput


def test_exported_sdl_is_current():
    assert Path(DEFAULT).read_text(encoding="utf-8") == sdl(), (
        "schema/schema.graphql is stale: run `python -m schema export` and review the diff "
        "(changes must be additive; deprecate before removing)")


def test_every_profile_input_field_has_a_category():
    fields = {f.python_name for f in PeacebuilderProfileInput.__strawberry_definition__.fields}
    assert fields == set(PROFILE_FIELDS), "every sensitive field needs exactly one data category"
    assert all(isinstance(c, DataCategory) for c in PROFILE_FIELDS.values())


def test_every_free_text_case_column_has_a_category():
    # A new free-text column on cases is sensitive until proven otherwise: it needs a category.
    from sqlalchemy import Text

    from app.tables.categories import CASE_FIELDS

    text_columns = {c.name for c in Base.metadata.tables["cases"].columns if isinstance(c.type, Text)}
    assert text_columns == set(CASE_FIELDS)


def test_every_free_text_incident_column_has_a_category():
    from sqlalchemy import Text

    from app.tables.categories import INCIDENT_FIELDS

    text_columns = {c.name for c in Base.metadata.tables["incidents"].columns
                    if isinstance(c.type, Text)}
    assert text_columns == set(INCIDENT_FIELDS)


def test_sensitive_values_only_live_in_the_categorised_table():
    # The pseudonymous record must not grow sensitive columns: they belong in peacebuilder_data.
    columns = set(Base.metadata.tables["peacebuilders"].columns.keys())
    assert columns == {"id", "pseudonym", "preferred_language", "registered_by_org_id",
                       "created_at", "updated_at", "has_login"}
    assert not columns & set(PROFILE_FIELDS)


def test_every_field_has_a_description():
    from schema.schema import schema

    missing = []

    for name, gql_type in schema._schema.type_map.items():
        if name.startswith("__") or not hasattr(gql_type, "fields"):
            continue
        if name in {"Query", "Mutation"}:
            missing += [f"{name}.{f}" for f, d in gql_type.fields.items() if not d.description]
    assert missing == []
