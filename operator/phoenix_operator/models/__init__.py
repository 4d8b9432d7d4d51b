"""Pydantic specs and statuses: the single source of truth for the CRD schemas."""
