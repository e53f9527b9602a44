"""Applications on a trained run: predict on a new video, export the model, inspect preprocessed data."""
