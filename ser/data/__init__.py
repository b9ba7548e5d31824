"""Stage 1, data: reading audio, listing clips and their speakers, laying out a corpus."""
