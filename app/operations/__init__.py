"""Registered (persisted) GraphQL operations and each organisation's acceptance setting."""
