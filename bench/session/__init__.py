"""The session benchmark: a session's start and file transfers through a real gateway (README.md)."""
