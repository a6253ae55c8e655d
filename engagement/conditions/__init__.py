"""Conditions: parsed once into a small AST, compiled to SQL for everyone, or evaluated in
Python for one subject. The two must agree (tests/test_conditions_agree.py)."""
