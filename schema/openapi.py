"""The HTTP endpoints beside GraphQL, as an OpenAPI 3.1 document (served at /openapi.json).

GraphQL itself is described by its SDL (/schema.graphql); here only how to reach it. The test
(tests/test_openapi.py) validates this document and runs schemathesis against the app, so a
route that answers something not declared here fails.
"""

from __future__ import annotations

from typing import Any

from app.incidents.attachments import MAX_BYTES, SIGNATURES, TEXT
from app.tables.categories import DataCategory, Purpose

VERSION = "0.2.0"

_ERROR = {"$ref": "#/components/schemas/Errors"}
_OAUTH_ERROR = {"$ref": "#/components/schemas/OAuthError"}
_PURPOSE = {"$ref": "#/components/parameters/Purpose"}


def _json(schema: dict[str, Any], description: str, **headers: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description,
                           "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "Bad request (`extensions.code` says why).",
            401: "No valid bearer token.", 403: "Not allowed (`FORBIDDEN`, `STEP_UP_REQUIRED`).",
            404: "Not found: missing, or not yours to see (the same answer).",
            410: "Erased with her data.", 413: "Body too large.",
            429: "Rate limited (`Retry-After`).", 500: "Integrity check failed.",
            503: "Not ready, or the identity provider is unreachable."}
    return {str(s): _json(_ERROR, text[s]) for s in statuses}


_TOKEN = {
    "type": "object", "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string", "description": "A JWT (Ed25519); send as "
                                                          "`Authorization: Bearer …`."},
        "token_type": {"const": "Bearer"},
        "expires_in": {"type": "integer", "description": "Seconds."},
        "refresh_token": {"type": "string", "description": (
            "People's sessions: exchange at /oauth/token (`grant_type=refresh_token`); each is "
            "spent once (a spent one presented again ends the session).")},
        "mfa_enrolment_required": {"type": "boolean", "description": (
            "The role needs a second factor and none is enrolled: the token can only enrol.")},
    },
}

_PATHS: dict[str, Any] = {
    "/auth/login": {"post": {
        "operationId": "login", "tags": ["auth"], "security": [],
        "summary": "Sign in with a password (built-in issuer).",
        "description": (
            "Staff send `organisation`, `username`, `password` and, once enrolled, `totp` (a "
            "current code; focal points, admins and auditors must). She sends `login` and "
            "`password`. Every failure is the same 401. Rate-limited per account and address."),
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
            {"type": "object", "title": "Staff",
             "required": ["organisation", "username", "password"],
             "properties": {"organisation": {"type": "string", "description": "Slug."},
                            "username": {"type": "string"}, "password": {"type": "string"},
                            "totp": {"type": ["string", "null"],
                                     "description": "Six-digit TOTP code."}}},
            {"type": "object", "title": "Peacebuilder", "required": ["login", "password"],
             "properties": {"login": {"type": "string"}, "password": {"type": "string"},
                            "totp": {"type": ["string", "null"], "description": (
                                "Six-digit TOTP code, once she enrolled a factor.")}}},
        ]}}}},
        "responses": {
            "200": _json(_TOKEN, "A short-lived access token."),
            "400": _json(_OAUTH_ERROR, "Malformed body (`invalid_request`)."),
            "401": _json(_OAUTH_ERROR, "Wrong credentials or code (`invalid_grant`)."),
            "429": _json(_OAUTH_ERROR, "Too many attempts (`slow_down`, `Retry-After`)."),
        },
    }},
    "/auth/redeem-code": {"post": {
        "operationId": "redeemCode", "tags": ["auth", "her"], "security": [],
        "summary": "She redeems a one-time enrolment or reset code and sets her own password.",
        "description": (
            "The code was issued by her network's focal point or by her lead organisation "
            "under the two-person rule (`issueHerCode`) and handed to her out of band; it is "
            "short-lived (72 hours by default), works once, and locks after five wrong tries "
            "(counted per code, in the database). `login` is needed for a first enrolment (the "
            "name she will sign in with). Every refused code is the same 400 `invalid_grant`. "
            "Redeeming ends all her sessions and refresh tokens; her network is alerted and "
            "she is told at her next sign-in. For 7 days after, consent her login widens waits "
            "for her network's confirmation (docs/decisions/0027-her-account-threat-model.md). "
            "Neither the code nor the password is ever logged. Rate-limited per address."),
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["code", "password"],
            "properties": {
                "code": {"type": "string", "description": (
                    "As shown (groups of four); case, spaces and dashes do not matter.")},
                "password": {"type": "string", "minLength": 10,
                             "description": "The password she chooses."},
                "login": {"type": ["string", "null"], "description": (
                    "First enrolment only: her login name (3 to 80 characters).")}}}}}},
        "responses": {
            "200": _json({"type": "object", "required": ["redeemed", "login", "purpose"],
                          "properties": {"redeemed": {"const": True},
                                         "login": {"type": "string"},
                                         "purpose": {"enum": ["enrolment", "reset",
                                                              "reset_all"]}}},
                         "Her password is set: she signs in at /auth/login."),
            "400": _json(_OAUTH_ERROR, "Malformed body (`invalid_request`, with the `field`), "
                                       "or a code that is not valid (`invalid_grant`)."),
            "429": _json(_OAUTH_ERROR, "Too many attempts (`slow_down`, `Retry-After`)."),
        },
    }},
    "/oauth/token": {"post": {
        "operationId": "token", "tags": ["auth"], "security": [{"clientBasic": []}, {}],
        "summary": "OAuth 2.0 tokens: client credentials (machine clients), refresh (people).",
        "description": ("`grant_type=client_credentials`, the client authenticated with HTTP "
                        "Basic (`client_secret_basic`) or `client_id` and `client_secret` in "
                        "the form (`client_secret_post`); or `grant_type=refresh_token` with "
                        "a person's refresh token (rotated: the answer carries a new one)."),
        "requestBody": {"required": True, "content": {
            "application/x-www-form-urlencoded": {"schema": {
                "type": "object", "required": ["grant_type"],
                "properties": {"grant_type": {"enum": ["client_credentials", "refresh_token"]},
                               "client_id": {"type": "string"},
                               "client_secret": {"type": "string"},
                               "refresh_token": {"type": "string"},
                               "scope": {"type": "string"}}}}}},
        "responses": {
            "200": _json(_TOKEN, "An access token."),
            "400": _json(_OAUTH_ERROR, "Malformed or unsupported request (RFC 6749 §5.2)."),
            "401": _json(_OAUTH_ERROR, "Unknown client or wrong secret (`invalid_client`)."),
            "429": _json(_OAUTH_ERROR, "Too many requests (`slow_down`, `Retry-After`)."),
        },
    }},
    **{path: {"post": {
        "operationId": op, "tags": ["auth"], "security": [],
        "summary": summary,
        "description": ("Ends the session of a refresh token (`token` or `refresh_token`, as a "
                        "form or JSON) on every replica at the next request, its access tokens "
                        "included. 200 whether or not the token was known."),
        "requestBody": {"required": True, "content": {
            media: {"schema": {"type": "object", "properties": {
                "token": {"type": "string"}, "refresh_token": {"type": "string"}}}}
            for media in ("application/x-www-form-urlencoded", "application/json")}},
        "responses": {
            "200": _json({"type": "object", "required": ["signed_out"],
                          "properties": {"signed_out": {"const": True}}}, "Signed out."),
            "400": _json(_OAUTH_ERROR, "No token sent (`invalid_request`)."),
        },
    }} for path, op, summary in (
        ("/auth/logout", "logout", "Sign out: end a session by its refresh token."),
        ("/oauth/revoke", "revoke", "RFC 7009 token revocation (the same as /auth/logout)."))},
    "/me/data-copy": {"get": {
        "operationId": "dataCopy", "tags": ["her"],
        "summary": "Her own copy of everything held about her (JSON, streamed).",
        "description": "Her own token only; no purpose needed; logged before any byte leaves.",
        "responses": {
            "200": _json({"type": "object"}, "The copy (`Content-Disposition: attachment`)."),
            **_errors(401, 403, 404),
        },
    }},
    "/.well-known/jwks.json": {"get": {
        "operationId": "jwks", "tags": ["auth"], "security": [],
        "summary": "Public keys of the built-in issuer (JWKS).",
        "responses": {"200": _json({"type": "object", "required": ["keys"], "properties": {
            "keys": {"type": "array", "items": {"type": "object"}}}}, "The key set.")},
    }},
    "/graphql": {
        "get": {
            "operationId": "graphqlGet", "tags": ["graphql"],
            "summary": "A GraphQL query (no mutations) in the URL; GraphiQL in development.",
            "description": ("GraphQL over HTTP. The schema is `/schema.graphql`; errors carry "
                            "`extensions.code`. A browser (`Accept: text/html`) without `query` "
                            "gets GraphiQL in development."),
            "parameters": [
                {"name": "query", "in": "query", "schema": {"type": "string"}},
                {"name": "variables", "in": "query", "schema": {"type": "string"},
                 "description": "JSON object."},
                {"name": "operationName", "in": "query", "schema": {"type": "string"}},
                _PURPOSE],
            "responses": {"200": _json({"$ref": "#/components/schemas/GraphQLResponse"},
                                       "A GraphQL response."),
                          "400": _json(_ERROR, "A request error (graphql-response+json)."),
                          "401": _json(_ERROR, "No valid bearer token."),
                          "404": _json(_ERROR, "GraphiQL is not served in production."),
                          "405": _json(_ERROR, "Mutations need POST."),
                          "406": _json(_ERROR, "Unacceptable `Accept`."),
                          "429": _json(_ERROR, "Rate limit or cost quota used up."),
                          "504": _json(_ERROR, "Took too long; nothing changed.")},
        },
        "post": {
            "operationId": "graphqlPost", "tags": ["graphql"],
            "summary": "A GraphQL operation (one per request; batches are refused).",
            "description": ("Needs a bearer token, except a document whose root fields are "
                            "only `helpDesks` and `requestHelp` (a woman without an account "
                            "asking for help; `requestHelp` is limited per client address)."),
            "parameters": [_PURPOSE],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {"query": {"type": "string"},
                               "variables": {"type": ["object", "null"]},
                               "operationName": {"type": ["string", "null"]},
                               "extensions": {"type": ["object", "null"], "description": (
                                   "`persistedQuery.sha256Hash` for a registered operation.")}},
            }}}},
            "responses": {"200": _json({"$ref": "#/components/schemas/GraphQLResponse"},
                                       "A GraphQL response."),
                          "400": _json(_ERROR, "A request error."),
                          "401": _json(_ERROR, "No valid bearer token (and not a public "
                                                       "operation)."),
                          "406": _json(_ERROR, "Unacceptable `Accept`."),
                          "413": _json(_ERROR, "Body too large."),
                          "415": _json(_ERROR, "Not JSON."),
                          "429": _json(_ERROR, "Rate limit or cost quota used up."),
                          "504": _json(_ERROR, "Took too long; nothing changed.")},
        },
    },
    "/schema.graphql": {"get": {
        "operationId": "sdl", "tags": ["graphql"],
        "summary": "The GraphQL schema (SDL) this service runs, for code generators.",
        "description": "Also shipped in the Python package as `schema/schema.graphql`.",
        "responses": {"200": {"description": "The SDL.",
                              "content": {"application/graphql": {"schema": {"type": "string"}}}},
                      "401": _json(_ERROR, "No valid bearer token.")},
    }},
    "/incidents/{incident_id}/attachments": {"post": {
        "operationId": "uploadAttachment", "tags": ["evidence"],
        "summary": "File evidence on an incident (sealed with her key).",
        "description": (f"PNG, JPEG, PDF or UTF-8 text, at most {MAX_BYTES // (1024 * 1024)} "
                        "MiB. The raw body with its Content-Type, or multipart/form-data with "
                        "the file in the part `file` (`curl -F file=@evidence.pdf`) and the "
                        "category in `category` or the `Safety-Net-Category` header. Her "
                        "consent must release that category to you for the declared purpose."),
        "parameters": [
            {"name": "incident_id", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "The incident's global ID."},
            {"name": "Safety-Net-Category", "in": "header", "schema": {
                "type": "string", "enum": [c.value for c in DataCategory],
                "default": DataCategory.INCIDENT_DETAILS.value}},
            _PURPOSE],
        "requestBody": {"required": True, "content": {
            **{kind: {"schema": {"type": "string", "format": "binary"}}
               for kind in (*SIGNATURES, TEXT)},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"},
                               "category": {"type": "string",
                                            "enum": [c.value for c in DataCategory]}}}},
        }},
        "responses": {
            "201": _json({"type": "object", "required": ["id"], "properties": {
                "id": {"type": "string", "description": "The attachment's global ID."}}},
                "Stored."),
            **_errors(400, 401, 403, 404, 413, 429),
        },
    }},
    "/attachments/{attachment_id}": {"get": {
        "operationId": "downloadAttachment", "tags": ["evidence"],
        "summary": "Download evidence (as its stored type, `Content-Disposition: attachment`).",
        "parameters": [
            {"name": "attachment_id", "in": "path", "required": True,
             "schema": {"type": "string"}, "description": "The attachment's global ID."},
            _PURPOSE],
        "responses": {
            "200": {"description": "The file.", "content": {
                kind: {"schema": {"type": "string", "format": "binary"}}
                for kind in (*SIGNATURES, TEXT)}},
            **_errors(400, 401, 403, 404, 410, 429, 500),
        },
    }},
    "/monitoring/report": {"get": {
        "operationId": "monitoringReport", "tags": ["monitoring"],
        "summary": "What your organisation released for a period: CSV, printable HTML or PDF.",
        "description": ("Recorded releases only (GraphQL `releaseMonitoringTable` publishes one): "
                        "counts of women, suppressed (`suppressed`) and rounded as released; "
                        "`no data` for a region without a reporting mechanism; percentages "
                        "from the rounded counts. Focal points and analysts, with the "
                        "aggregate_reporting purpose. Decision 0033."),
        "parameters": [
            {"name": "period", "in": "query", "required": True, "schema": {
                "type": "string", "pattern": "^[0-9]{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?$"},
             "description": "A calendar year (2026), quarter (2026-Q2) or month (2026-04)."},
            {"name": "format", "in": "query", "schema": {"enum": ["csv", "html", "pdf"],
                                                         "default": "html"}},
            _PURPOSE],
        "responses": {
            "200": {"description": "The report.", "content": {
                "text/csv": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
            **_errors(400, 401, 403, 429),
        },
    }},
    "/audit/export": {"get": {
        "operationId": "auditExport", "tags": ["audit"],
        "summary": "Export the access log you may audit, with the covering signed checkpoint.",
        "description": ("Auditors, with a second factor from the last 15 minutes. JSON Lines: "
                        "the checkpoint first, then every entry up to it (others' as "
                        "{seq, hash} stubs) — `safety-net audit verify-export FILE` checks it "
                        "offline. CSV: your entries, the checkpoint in "
                        "`X-Safety-Net-Checkpoint` (base64)."),
        "parameters": [
            {"name": "format", "in": "query", "schema": {"enum": ["jsonl", "csv"],
                                                         "default": "jsonl"}},
            {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            {"name": "decision", "in": "query", "schema": {"enum": ["allow", "deny"]}},
            {"name": "purpose", "in": "query", "schema": {"type": "string"}},
            {"name": "actor", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {
            "200": {"description": "The export.", "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}}}},
            "400": {"description": "Bad parameters.", "content": {"application/json": {
                "schema": {"type": "object"}}}},
            **_errors(401, 403, 429),
        },
    }},
    "/healthz": {"get": {
        "operationId": "healthz", "tags": ["operations"], "security": [],
        "summary": "Liveness: the process answers.",
        "responses": {"200": {"description": "Alive.",
                              "content": {"text/plain": {"schema": {"const": "ok"}}}}},
    }},
    "/readyz": {"get": {
        "operationId": "readyz", "tags": ["operations"], "security": [],
        "summary": "Readiness: database reachable and migrated (or migrated by a newer release).",
        "responses": {
            "200": _json({"$ref": "#/components/schemas/Readiness"}, "Ready."),
            "503": _json({"$ref": "#/components/schemas/Readiness"}, "Not ready, and why."),
        },
    }},
    "/openapi.json": {"get": {
        "operationId": "openapi", "tags": ["operations"], "security": [],
        "summary": "This document.",
        "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
    }},
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Safety Net HTTP endpoints",
        "version": VERSION,
        "description": (
            "Everything beside GraphQL: sign-in, tokens, evidence files, the audit export and "
            "probes. GraphQL's own contract is the SDL at `/schema.graphql`. Errors are "
            "`{\"errors\": [{\"message\", \"extensions\": {\"code\"}}]}` (OAuth endpoints: "
            "RFC 6749 `{\"error\", \"error_description\"}`). IDs in paths are the opaque global "
            "IDs GraphQL returns."),
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "tags": [{"name": n} for n in ("auth", "graphql", "evidence", "audit", "her", "operations")],
    "paths": _PATHS,
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "clientBasic": {"type": "http", "scheme": "basic"},
        },
        "parameters": {"Purpose": {
            "name": "Safety-Net-Purpose", "in": "header", "schema": {
                "type": "string", "enum": [p.value for p in Purpose]},
            "description": ("Why her data is used. Staff and machine clients must declare one "
                            "for any operation that selects her records (`PURPOSE_REQUIRED` "
                            "otherwise)."),
        }},
        "schemas": {
            "Errors": {"type": "object", "required": ["errors"], "properties": {"errors": {
                "type": "array", "items": {"type": "object", "required": ["message"],
                                           "properties": {
                                               "message": {"type": "string"},
                                               "extensions": {"type": "object", "properties": {
                                                   "code": {"type": "string"}}}}}}}},
            "OAuthError": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "string"}, "error_description": {"type": "string"}}},
            "GraphQLResponse": {"type": "object", "properties": {
                "data": {"type": ["object", "null"]},
                "errors": {"type": "array", "items": {"type": "object"}},
                "extensions": {"type": "object", "properties": {"redacted": {
                    "type": "array", "description": "Fields withheld: {path, reason}; the same "
                                                    "as each object's `withheld`.",
                    "items": {"type": "object"}}}}}},
            "Readiness": {"type": "object", "required": ["status"], "properties": {
                "status": {"enum": ["ok", "unavailable"]},
                "reason": {"type": ["string", "null"]}}},
        },
    },
}


def document() -> dict[str, Any]:
    return DOCUMENT
