import pytest
from PIL import Image

from asif.datasets.pets import breed_name, load_pets
from asif.errors import DatasetError

# (image stem, class id, species, breed id) as in annotations/*.txt
TEST = [
    ("american_pit_bull_terrier_12", 3, 2, 2),
    ("Abyssinian_100", 1, 1, 1),
    ("american_bulldog_7", 2, 2, 1),
    ("Abyssinian_101", 1, 1, 1),
]
TRAINVAL = [("Abyssinian_1", 1, 1, 1), ("american_bulldog_1", 2, 2, 1)]


def write_listing(path, rows):
    header = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n"
    path.write_text(header + "".join(" ".join(map(str, r)) + "\n" for r in rows))


def write_pets(folder, test=TEST, trainval=TRAINVAL):
    """`folder` laid out as the Oxford-IIIT Pet download: images/ and annotations/."""
    (folder / "images").mkdir(parents=True)
    (folder / "annotations").mkdir()
    for stem, *_ in test + trainval:
        Image.new("RGB", (4, 4), (len(stem), 0, 0)).save(folder / "images" / f"{stem}.jpg")
    write_listing(folder / "annotations" / "test.txt", test)
    write_listing(folder / "annotations" / "trainval.txt", trainval)
    return folder


def test_breed_names_as_torchvision_derives_them():
    assert breed_name("american_pit_bull_terrier_12") == "American Pit Bull Terrier"
    assert breed_name("Abyssinian_100") == "Abyssinian"


def test_splits_labels_and_names_by_class_id(tmp_path):
    folder = write_pets(tmp_path / "oxford-iiit-pet")
    test = load_pets(folder)
    assert test.name == "pets-test"
    assert test.class_names == ["Abyssinian", "American Bulldog", "American Pit Bull Terrier"]
    assert list(test.labels) == [class_id - 1 for _, class_id, *_ in TEST]
    assert [p.name for p in test.images] == [f"{stem}.jpg" for stem, *_ in TEST]
    assert test.images[0].parent == folder / "images"
    train = load_pets(tmp_path, "train")  # the parent of oxford-iiit-pet/
    assert len(train) == 2 and list(train.labels) == [0, 1]
    assert load_pets(tmp_path, "trainval").class_names == ["Abyssinian", "American Bulldog"]
    with pytest.raises(ValueError, match="split must be one of"):
        load_pets(folder, "val")


def test_labels_index_the_classes_present(tmp_path):
    folder = write_pets(tmp_path, test=[("beagle_3", 5, 2, 4), ("Bengal_9", 6, 1, 2)])
    data = load_pets(folder)
    assert data.class_names == ["Beagle", "Bengal"] and list(data.labels) == [0, 1]


def test_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(DatasetError, match=r"test.txt not found: expected annotations/test.txt"):
        load_pets(tmp_path)
    folder = write_pets(tmp_path)
    listing = folder / "annotations" / "test.txt"
    listing.write_text("#header\nAbyssinian_100 1 1 1\nbeagle_3 five 2 4\n")
    with pytest.raises(DatasetError, match=r"test.txt line 3: 'beagle_3 five 2 4'"):
        load_pets(folder)
    listing.write_text("Abyssinian_100 0 1 1\n")
    with pytest.raises(DatasetError, match=r"test.txt line 1"):
        load_pets(folder)
    listing.write_text("# nothing\n")
    with pytest.raises(DatasetError, match="lists no images"):
        load_pets(folder)
    (folder / "images" / "Abyssinian_100.jpg").unlink()
    (folder / "images" / "american_bulldog_7.jpg").unlink()
    write_listing(listing, TEST)
    with pytest.raises(DatasetError, match=r"2 image\(s\) listed in .*test.txt.*first: Abyss"):
        load_pets(folder)
