"""Corpus specs: where a release keeps its videos, audio and ratings, and how its rating files are read."""
