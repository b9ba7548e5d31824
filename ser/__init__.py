"""ser-report: speech emotion recognition experiments behind a literate build.

The library is plain Python (no doit inside). ``dodo.py`` wraps these functions
into a task graph that ends in ``build/report.pdf``.
"""
