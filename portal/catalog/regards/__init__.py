"""REGARDS' own catalog API for existing REGARDS clients (SPEC section 1)."""
