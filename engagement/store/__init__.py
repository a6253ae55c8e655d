"""Persistence: tables, the database handle and dialect-neutral bulk writes."""
