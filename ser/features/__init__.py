"""Stage 2, features: mel spectrograms, hand-made spectral features, spectrogram images, pretrained anchors."""
