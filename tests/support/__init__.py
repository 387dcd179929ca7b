"""Shared test helpers: real services, real server processes, tokens."""
