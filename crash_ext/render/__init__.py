"""Renderers shared by verbs (Graphviz)."""
