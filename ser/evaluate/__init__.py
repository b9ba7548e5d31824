"""Stage 4, evaluation: the data-set card, paired statistics, the verdicts in words, the predictions CSV."""
