"""The working-group dashboard: server-rendered pages over the same GraphQL schema
(docs/decisions/0036-dashboard.md)."""
