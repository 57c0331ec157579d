"""Helpers shared by several test suites (not fixtures: import what you need)."""
