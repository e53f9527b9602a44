"""Preprocessing: a corpus spec and its files -> face crops, aligned ratings and audio in TFRecords with a manifest.

``options.py`` what is done to every frame (`PreprocessOptions`) and what a run did (`PreprocessReport`);
``align.py`` ratings carried to the frames' times, frames kept at a lower rate; ``session.py`` one session
(faces, crops, timeline, audio, record); ``inputs.py`` what a run checks first and what a record depends on;
``corpus.py`` the corpus (workers, shards, journal, resumption).
The manifest's schema, building and merging are in `emotrack.records.manifest`.
"""
