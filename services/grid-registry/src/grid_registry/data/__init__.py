"""Vendored reference data (Yangzhou division codes); see README.md for source and licence."""
