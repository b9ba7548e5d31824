"""Stage 5, report: figures and the rendered HTML/PDF."""
