"""Profiling: item descriptions (Eq. 8), profile initialisation and textual-gradient refinement."""
