"""Opaque global IDs: the one codec lives in app/ids.py (GraphQL and the HTTP routes alike)."""

from app.ids import decode, decode_any, encode

__all__ = ["decode", "decode_any", "encode"]
