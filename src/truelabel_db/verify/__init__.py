"""Verification (plan §2.4): both sides reduced to one canonical form and compared."""
