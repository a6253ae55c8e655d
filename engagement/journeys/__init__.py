"""Journeys as code: the file format, loading with line numbers, validation, the step program."""
