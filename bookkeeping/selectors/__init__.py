"""Queries (reads). Company scoping for staff users lives here, in one place."""
