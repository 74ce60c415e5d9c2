"""The database tables of every domain, below every service (docs/decisions/0035-package-layers.md)."""
