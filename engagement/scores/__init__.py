"""Engagement scores: responses credited into contact scores and bands."""
