"""Formal proofs of qmac's arithmetic and stream protocol with PyPI tools (docs/formal.md)."""
