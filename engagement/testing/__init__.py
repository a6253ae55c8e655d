"""Test doubles of the outside world that run for real on 127.0.0.1 (a SendGrid-compatible server)."""
