"""emotrack: continuous emotion recognition (arousal, valence) from face video."""

__version__ = "0.1.0"
