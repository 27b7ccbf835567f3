"""Renderer tests: text and JSON output compared with expected-output files."""
