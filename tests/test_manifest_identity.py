"""One corpus preprocessed twice, its root written relative once and absolute once, gives byte-identical
records and manifest, so the manifest's SHA-256 (which a run records) identifies the data."""

import hashlib


def _hashes(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def test_relative_and_absolute_root_give_the_same_bytes(tiny_corpus, tmp_path, monkeypatch):
    from emotrack.preprocess.corpus import preprocess_corpus

    preprocess_corpus("generic", tiny_corpus, tmp_path / "a", progress=False)
    monkeypatch.chdir(tiny_corpus.parent)
    preprocess_corpus("generic", tiny_corpus.name, tmp_path / "b", progress=False)
    a, b = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert "manifest.json" in a and any(name.endswith(".tfrecord") for name in a)
    assert a == b
