"""Ingest: records at the door, file imports, Segment calls, bulk upserts of accounts, contacts and events."""
