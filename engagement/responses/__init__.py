"""Responses: email events and in-app nudge interactions, in our own vocabulary."""
