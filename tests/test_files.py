import numpy as np
import pytest

from asif.files import atomic_file, atomic_write_bytes, atomic_write_text, staged_folder


class Crash(Exception):
    pass


def test_atomic_writes_replace_the_file(tmp_path):
    path = tmp_path / "new" / "f.txt"
    assert atomic_write_text(path, "one") == path and path.read_text() == "one"
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    with atomic_file(tmp_path / "a.npy") as f:
        np.save(f, np.arange(3))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.arange(3))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.npy", "f.txt", "new"]


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(Crash), atomic_file(path) as f:
        f.write(b"half of the new")
        raise Crash
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temporary file left


def test_staged_folder_appears_complete(tmp_path):
    path = tmp_path / "out" / "model"
    with staged_folder(path) as staging:
        assert not path.exists() and staging.parent == path.parent
        (staging / "a").write_text("1")
    assert [p.name for p in path.iterdir()] == ["a"]
    with staged_folder(path) as staging:
        (staging / "b").write_text("2")
    assert [p.name for p in path.iterdir()] == ["b"]  # replaced, not merged
    assert [p.name for p in path.parent.iterdir()] == ["model"]  # nothing staged or old left


def test_a_failed_folder_leaves_the_old_one(tmp_path):
    path = tmp_path / "model"
    path.mkdir()
    (path / "a").write_text("old")
    with pytest.raises(Crash), staged_folder(path) as staging:
        (staging / "a").write_text("new")
        raise Crash
    assert (path / "a").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    with pytest.raises(Crash), staged_folder(tmp_path / "never") as staging:
        raise Crash
    assert not (tmp_path / "never").exists()
