"""Renderers: plans, results and problems -> a stream, as text, JSON or Markdown."""
