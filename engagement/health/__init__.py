"""Health scorecards: account health from many signals, as code (PRODUCT.md, "Health scorecards")."""
