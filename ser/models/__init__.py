"""Stage 3, models: SVMs, the shared training protocol and its runs, augmentations, the 1D and 2D CNNs, fusion."""
