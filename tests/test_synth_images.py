"""Synthetic face-image sets in FER2013's and RAF-DB's release layouts: the files parse as the releases'
formats (read with pandas and PIL, independently of emotrack's readers), one seed gives the same bytes,
the classes can be told apart, and emotrack's readers read them and name what is wrong in a bad file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from emotrack.cli import main
from emotrack.corpora.images import ImageSetError, read_fer2013, read_rafdb
from emotrack.synth.images import synthesize_images

COUNT = 10  # subjects, so images per class


@pytest.fixture(scope="module")
def fer(tmp_path_factory):
    return synthesize_images("fer2013", tmp_path_factory.mktemp("fer"), count=COUNT, seed=4)


@pytest.fixture(scope="module")
def raf(tmp_path_factory):
    return synthesize_images("rafdb", tmp_path_factory.mktemp("raf"), count=COUNT, seed=4)


def test_fer2013_csv_is_the_release_format(fer):
    table = pd.read_csv(fer["path"])
    assert list(table.columns) == ["emotion", "pixels", "Usage"] and len(table) == 7 * COUNT
    pixels = np.stack([np.array(p.split(), dtype=int) for p in table["pixels"]])
    assert pixels.shape == (7 * COUNT, 2304) and pixels.min() >= 0 and pixels.max() <= 255
    assert np.bincount(table["emotion"], minlength=7).tolist() == [COUNT] * 7
    # Rows in the release's order of usages; each usage holds whole subjects (all seven classes).
    usage = table["Usage"].tolist()
    assert usage == sorted(usage, key=["Training", "PublicTest", "PrivateTest"].index)
    assert {u: usage.count(u) for u in set(usage)} == {"Training": 56, "PublicTest": 7, "PrivateTest": 7}


def test_rafdb_tree_is_the_release_layout(raf, tmp_path):
    basic = tmp_path.parent / raf["path"]
    lines = (basic / "EmoLabel" / "list_patition_label.txt").read_text().splitlines()
    assert len(lines) == 7 * COUNT
    splits = []
    for line in lines:
        name, label = line.split(" ")
        split, number = name[:-4].split("_")
        assert 1 <= int(label) <= 7 and name.endswith(".jpg") and len(number) == (5 if split == "train" else 4)
        with Image.open(basic / "Image" / "aligned" / f"{name[:-4]}_aligned.jpg") as image:
            assert image.format == "JPEG" and image.size == (100, 100) and image.mode == "RGB"
        splits.append(split)
    assert splits == ["train"] * 56 + ["test"] * 14  # 8 and 2 subjects of 7 images
    assert [ln.split()[0] for ln in lines[:2]] == ["train_00001.jpg", "train_00002.jpg"]


def test_the_same_seed_writes_the_same_bytes(tmp_path):
    a, b, c = (synthesize_images("fer2013", tmp_path / name, count=3, seed=seed)
               for name, seed in (("a", 4), ("b", 4), ("c", 5)))
    assert open(a["path"], "rb").read() == open(b["path"], "rb").read() != open(c["path"], "rb").read()
    raf2 = synthesize_images("rafdb", tmp_path / "raf", count=3, seed=4)
    raf3 = synthesize_images("rafdb", tmp_path / "raf3", count=3, seed=4)
    files = sorted(p.relative_to(raf2["path"]) for p in (tmp_path / "raf" / "basic").rglob("*.*"))
    assert len(files) == 22 and all((tmp_path / "raf" / "basic" / f).read_bytes() ==
                                    (tmp_path / "raf3" / "basic" / f).read_bytes() for f in files)


def test_the_classes_differ_where_the_expression_acts():
    from emotrack.synth.images import expression_image, subject_renderer

    mouth, top = [], []
    for subject in range(6):
        renderer = subject_renderer(0, subject, 96)
        happy, sad = (expression_image(renderer, 0, subject, e).astype(float).mean(2) for e in ("happy", "sad"))
        difference = np.abs(happy - sad)
        mouth.append(difference[60:84, 28:68].mean())  # the mouth: corners up against corners down
        top.append(difference[:20].mean())  # cap and hair: only the small pose jitter moves them
    assert np.mean(mouth) > 1.5 * np.mean(top)


def test_readers_read_the_sets(fer, raf):
    images, labels, usage = read_fer2013(fer["path"])
    table = pd.read_csv(fer["path"])
    assert images.shape == (70, 48, 48) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[5].ravel(), np.array(table["pixels"][5].split(), dtype=np.uint8))
    np.testing.assert_array_equal(labels, table["emotion"].to_numpy())
    assert usage.tolist() == table["Usage"].tolist()
    items = read_rafdb(raf["path"])
    assert len(items) == 70 and items[0][0].name == "train_00001_aligned.jpg"
    first = (open(raf["path"] + "/EmoLabel/list_patition_label.txt").readline().split())
    assert items[0][1] == int(first[1]) - 1 and {p for _, _, p in items} == {"train", "test"}


def test_readers_name_the_file_and_what_it_must_hold(tmp_path):
    csv = tmp_path / "fer2013.csv"
    with pytest.raises(ImageSetError, match="fer2013.csv does not exist"):
        read_fer2013(csv)
    good = " ".join(["7"] * 2304)
    for text, message in (("emotion,pixels\n0,\"1 2\"\n", "lacks the column\\(s\\) Usage"),
                          (f"emotion,pixels,Usage\n0,\"{good} 9\",Training\n", "data row 1: pixels must be 2304"),
                          (f"emotion,pixels,Usage\n0,\"{good}\",Training\n0,\"{good[:-1]}300\",Training\n",
                           "data row 2: pixels must be 2304 integers in 0..255"),
                          (f"emotion,pixels,Usage\n7,\"{good}\",Training\n", "emotion '7' is not one of 0..6"),
                          (f"emotion,pixels,Usage\n1,\"{good}\",Validation\n", "Usage 'Validation' is not one of")):
        csv.write_text(text)
        with pytest.raises(ImageSetError, match=message) as err:
            read_fer2013(csv)
        assert str(csv) in str(err.value)
    with pytest.raises(ImageSetError, match="list_patition_label.txt does not exist"):
        read_rafdb(tmp_path)
    (tmp_path / "EmoLabel").mkdir()
    label_file = tmp_path / "EmoLabel" / "list_patition_label.txt"
    for text, message in (("train_00001.jpg 8\n", "label 8 is not one of 1..7"),
                          ("train_00001.jpg\n", "expected 'name.jpg label'"),
                          ("valid_00001.jpg 1\n", "valid_00001.jpg starts with neither 'train' nor 'test'"),
                          ("train_00001.jpg 1\n", "no image for train_00001.jpg")):
        label_file.write_text(text)
        with pytest.raises(ImageSetError, match=f"list_patition_label.txt:1: {message}"):
            read_rafdb(tmp_path)


def test_cli_writes_an_image_set(tmp_path):
    result = CliRunner().invoke(main, ["synth", "--images", "fer2013", "--out", str(tmp_path), "--count", "3"])
    assert result.exit_code == 0, result.output
    assert "wrote 21 fer2013 images (3 per class)" in result.output
    assert read_fer2013(tmp_path / "fer2013.csv")[0].shape == (21, 48, 48)
    with pytest.raises(ValueError, match="there are: fer2013, rafdb"):
        synthesize_images("affectnet", tmp_path)
