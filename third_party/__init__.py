"""Vendored adapters around third-party code (see third_party/README.md)."""
