"""Preprocessing: a corpus spec and its files -> face crops, aligned ratings and audio in TFRecords with a manifest.

``options.py`` what is done to every frame (`PreprocessOptions`) and what a run did (`PreprocessReport`);
``align.py`` ratings carried to the frames' times, frames kept at a lower rate; ``session.py`` one session
(timeline, audio, record); ``crops.py`` its face's crops, every person's, or the person on one side of a
shared video; ``people.py`` a session per person (``--faces all``); ``inputs.py`` what a run checks first
and what a record depends on; ``corpus.py`` the corpus (workers, shards, journal, resumption).
The manifest's schema, building and merging are in `emotrack.records.manifest`.
"""
