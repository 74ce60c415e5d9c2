"""Registered operations and the second factor, in GraphQL."""
