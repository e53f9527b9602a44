"""Preprocessing: a corpus spec and its files -> face crops, aligned ratings and audio in TFRecords with a manifest."""
