"""Embedded nomenclature extracts of the synthetic SNDS generator (see README.md: source and licence)."""
