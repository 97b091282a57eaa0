"""Every real benchmark layout end to end: built in tmp_path from real Fashion-MNIST test images
(so the scores mean something), read by `load_benchmark`, evaluated by `evaluate_version` on the
real anchor table, and every metric of the row checked against a brute-force computation from
the dense ASIF scores of the same images and texts.

The references know the layouts from how they were written (file order, labels, captions), not
from the loaders: images are embedded here from the files written, in the order each format
defines, so a loader that misorders, mislabels or drops anything fails the check.
"""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from asif.datasets import LabelledImages, fashion_mnist
from asif.demo import CAPTION_TEMPLATES
from asif.encoders import load_image_encoder, load_text_encoder
from asif.encoders.base import ImageInput
from asif.evaluation.batches import LocalBatches
from asif.evaluation.benchmarks import Benchmark, load_benchmark
from asif.evaluation.evaluate import EvalConfig, evaluate_version
from asif.evaluation.retrieval_benchmarks import RetrievalBenchmark
from asif.evaluation.templates import CIFAR_TEMPLATES, IMAGENET_TEMPLATES, PETS_TEMPLATES
from asif.model import AsifModel
from asif.model.from_table import model_from_table
from asif.model.relative import similarity
from asif.model.zero_shot import prompts
from tests.datasets.test_imagenet_val import write_devkit
from tests.evaluation.shared import IMAGE_ENCODER, TEXT_ENCODER, K

CONFIG = EvalConfig(k=K)
TOL = 1e-9
RECALL_KS = (1, 5, 10)
RETRIEVAL_METRICS = tuple(
    f"{way}_retrieval_recall_at_{k}" for way in ("image", "text") for k in RECALL_KS
)
CLASSIFICATION_METRICS = ("acc1", "acc5", "mean_per_class_recall")

# Fashion-MNIST class ids
TSHIRT, TROUSER, PULLOVER, DRESS, COAT, SANDAL, SHIRT, SNEAKER, BAG, ANKLE_BOOT = range(10)
FM_NAMES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker")
FM_NAMES += ("bag", "ankle boot")

# Varied captions (one with commas, as Flickr's lines have) for the caption-file layouts.
OWN_TEMPLATES = (
    "a {}, seen from the front, on black",
    "someone's old {}",
    "a photo of a {}.",
    "{}",
    "a {} for sale, cheap",
    "the {} in the picture",
)

CIFAR100_NAMES = """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy
bridge bus butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach
couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo
keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse
mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy
porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail
snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger
tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm""".split()


# ------------------------------------------------------------------------------- test images


@cache
def _fashion_test() -> LabelledImages:
    return fashion_mnist("test")


def pick(fm_class: int, count: int, skip: int = 0) -> list[np.ndarray]:
    """`count` Fashion-MNIST test images (28x28 uint8) of `fm_class`, after the first `skip`."""
    data = _fashion_test()
    rows = np.flatnonzero(data.labels == fm_class)[skip : skip + count]
    return [np.asarray(data.images[i]) for i in rows]


def save(image: np.ndarray, path: Path) -> Path:
    """`image` written at `path`, in the format its suffix names (JPEG or PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


# ----------------------------------------------------------------------------- brute force


def reference_model(table) -> AsifModel:
    return model_from_table(table).with_settings(k=CONFIG.k, p=CONFIG.p)


def embed_images(images: list[ImageInput]) -> np.ndarray:
    """As the evaluation embeds a benchmark: in its order, in batches of 32."""
    return load_image_encoder(IMAGE_ENCODER).encode(images, batch_size=32)


def embed_texts(texts: list[str]) -> np.ndarray:
    return load_text_encoder(TEXT_ENCODER).encode(texts)


def best_first(scores: np.ndarray, lower_first: bool = True) -> np.ndarray:
    """Each row's columns, best first, by a full stable sort: ties to the lower column (or,
    with `lower_first` False, to the higher one)."""
    if lower_first:
        return np.argsort(-scores, axis=1, kind="stable")
    last = scores.shape[1] - 1
    return last - np.argsort(-scores[:, ::-1], axis=1, kind="stable")


def classification_reference(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """CLIP_benchmark's classification metrics from dense (n, classes) scores."""
    order = best_first(scores)
    predicted = order[:, 0]
    assert np.array_equal(predicted, np.argmax(scores, axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true": dropped
        balanced = balanced_accuracy_score(labels, predicted)
    top5 = (order[:, :5] == labels[:, None]).any(axis=1)
    return {
        "acc1": float(accuracy_score(labels, predicted)),
        "acc5": float(np.mean(top5)) if scores.shape[1] >= 5 else float("nan"),
        "mean_per_class_recall": float(balanced),
    }


def retrieval_reference(
    scores: np.ndarray, owner: np.ndarray, lower_first: bool = True
) -> dict[str, float]:
    """Recall@k both ways from dense (images, captions) scores; `owner[j]`: caption j's image.

    Image retrieval: per caption, is its image among the k best images? Text retrieval: per
    image, is one of its captions among the k best captions?
    """
    images_ranked = best_first(scores.T, lower_first)  # (captions, images)
    image_rank = np.argmax(images_ranked == owner[:, None], axis=1)
    captions_ranked = best_first(scores, lower_first)  # (images, captions)
    mine = owner[captions_ranked] == np.arange(len(scores))[:, None]
    text_rank = np.argmax(mine, axis=1)  # the best-placed own caption
    out = {}
    for k in RECALL_KS:
        out[f"image_retrieval_recall_at_{k}"] = float(np.mean(image_rank < k))
        out[f"text_retrieval_recall_at_{k}"] = float(np.mean(text_rank < k))
    return out


def swapped(metrics: dict[str, float]) -> dict[str, float]:
    """Image and text retrieval exchanged: what a mix-up of the two directions reports."""
    return {
        key.replace("image_", "@").replace("text_", "image_").replace("@", "text_"): value
        for key, value in metrics.items()
    }


def assert_metrics(row: dict, expected: dict[str, float]) -> None:
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, abs=TOL, nan_ok=True), (key, row[key], value)


def differs(row: dict, other: dict[str, float]) -> bool:
    return any(abs(row[key] - value) > TOL for key, value in other.items())


def evaluate(table, bench, cache) -> dict:
    (row,) = evaluate_version(table, [bench], [CONFIG], cache=cache, runner=LocalBatches())
    assert (row["k"], row["p"], row["n_anchors"]) == (K, CONFIG.p, len(table))
    assert (row["benchmark"], row["split"], row["task"]) == (bench.name, bench.split, bench.task)
    return row


# --------------------------------------------------------------------------- classification


@dataclass(frozen=True)
class Labelled:
    """What a classification layout holds, in the order its format defines."""

    images: list[ImageInput]  # the files written (or arrays, for pickles)
    labels: list[int]
    class_names: list[str]  # as the benchmark should name them
    templates: tuple[str, ...]


def check_classification(
    table, cache, expected: Labelled, name, split, root, **options
) -> tuple[dict, np.ndarray]:
    """The row of the benchmark read from the layout against brute force; returns the row and
    the dense scores."""
    bench = load_benchmark(name, split, root, **options)
    assert isinstance(bench, Benchmark)
    assert bench.class_names == expected.class_names
    assert bench.templates == expected.templates
    assert bench.labels.tolist() == expected.labels
    if isinstance(expected.images[0], Path):
        assert [Path(p).resolve() for p in bench.data.images] == [
            Path(p).resolve() for p in expected.images
        ]
    row = evaluate(table, bench, cache)

    model = reference_model(table)
    texts = embed_texts(prompts(expected.class_names, list(expected.templates)))
    classifier = model.zero_shot_classifier(
        expected.class_names, expected.templates, CONFIG.strategy, texts
    )
    scores = classifier.scores(model.image_relative(embed_images(expected.images)))
    labels = np.asarray(expected.labels)
    n_classes = len(expected.class_names)
    assert scores.shape == (len(labels), n_classes)
    expected_metrics = classification_reference(scores, labels)
    assert set(expected_metrics) == set(CLASSIFICATION_METRICS)
    assert_metrics(row, expected_metrics)
    assert row["n_images"] == len(labels)
    assert (row["n_classes"], row["n_templates"]) == (n_classes, len(expected.templates))
    assert row["class_names"] == expected.class_names
    assert row["class_count"] == np.bincount(labels, minlength=n_classes).tolist()
    assert row["n_texts"] is None and row["image_retrieval_recall_at_1"] is None
    return row, scores


def test_oxford_pets_tree(anchor_table, cache, tmp_path):
    """images/<Breed>_<n>.jpg listed in annotations/test.txt with class ids; the breeds are
    Fashion-MNIST classes, named from the stems as torchvision does."""
    folder = tmp_path / "oxford-iiit-pet"
    breeds = [("Sneaker", 3, SNEAKER), ("trouser", 17, TROUSER), ("ankle_boot", 30, ANKLE_BOOT)]
    rows = []
    for stem, class_id, fm_class in breeds:
        for n, image in enumerate(pick(fm_class, 6, skip=10), start=1):
            save(image, folder / "images" / f"{stem}_{n}.jpg")
            rows.append((f"{stem}_{n}", class_id, 1 + class_id % 2, n))
    trainval = [rows.pop(0), rows.pop(6)]
    order = np.random.default_rng(1).permutation(len(rows))
    test = [rows[i] for i in order]
    (folder / "annotations").mkdir()
    header = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n"
    for file, listed in (("test.txt", test), ("trainval.txt", trainval)):
        lines = "".join(" ".join(map(str, r)) + "\n" for r in listed)
        (folder / "annotations" / file).write_text(header + lines)

    class_of = {class_id: label for label, (_, class_id, _) in enumerate(breeds)}
    expected = Labelled(
        [folder / "images" / f"{stem}.jpg" for stem, *_ in test],
        [class_of[class_id] for _, class_id, *_ in test],
        ["Sneaker", "Trouser", "Ankle Boot"],
        PETS_TEMPLATES,
    )
    row, _ = check_classification(anchor_table, cache, expected, "pets", "test", tmp_path)
    assert np.isnan(row["acc5"])  # 3 classes


def test_imagenet_flat_validation_images_with_devkit(anchor_table, cache, tmp_path):
    """ILSVRC2012_img_val/ILSVRC2012_val_<n>.JPEG (a subset of the numbers) and the devkit's
    meta.mat and ground truth; real WNIDs, so the classes get CLIP's names."""
    # meta.mat order (ILSVRC2012_ID) differs from the labels' (sorted WNIDs); the last has children
    synsets = [(1, "n04133789", 0), (2, "n03595614", 0), (3, "n03594734", 0), (4, "n00001740", 3)]
    fm_of_id = {1: SANDAL, 2: TSHIRT, 3: TROUSER}
    label_of_id = {3: 0, 2: 1, 1: 2}  # n03594734 jeans, n03595614 T-shirt, n04133789 sandal
    rng = np.random.default_rng(2)
    truth = rng.integers(1, 4, 40).tolist()  # ILSVRC2012_ID of images 1..40
    present = sorted(rng.choice(np.arange(1, 41), 18, replace=False).tolist())
    folder = tmp_path / "imagenet" / "ILSVRC2012_img_val"
    drawn = {i: iter(pick(fm_of_id[i], 18, skip=20)) for i in fm_of_id}
    paths = []
    for n in present:
        paths.append(save(next(drawn[truth[n - 1]]), folder / f"ILSVRC2012_val_{n:08d}.JPEG"))
    write_devkit(tmp_path / "imagenet" / "ILSVRC2012_devkit_t12", synsets, truth)

    labels = [label_of_id[truth[n - 1]] for n in present]
    expected = Labelled(paths, labels, ["jeans", "T-shirt", "sandal"], IMAGENET_TEMPLATES)
    check_classification(anchor_table, cache, expected, "imagenet", "val", tmp_path / "imagenet")


def test_imagenet_v2_index_named_folders(anchor_table, cache, tmp_path):
    """imagenetv2-*/<class index>/<hash>.jpeg, as ImageNet-v2 is distributed."""
    root = tmp_path / "imagenetv2-matched-frequency-format-val"
    classes = [("414", BAG, "backpack"), ("514", ANKLE_BOOT, "cowboy boot")]
    classes.append(("841", PULLOVER, "sweatshirt"))
    paths, labels = [], []
    for label, (folder, fm_class, _) in enumerate(classes):
        images = pick(fm_class, 6, skip=30)
        names = sorted(f"{(37 * i + 11 * label) % 97:02x}{i}.jpeg" for i in range(len(images)))
        for image, name in zip(images, names, strict=True):
            paths.append(save(image, root / folder / name))
            labels.append(label)
    expected = Labelled(paths, labels, [n for *_, n in classes], IMAGENET_TEMPLATES)
    check_classification(anchor_table, cache, expected, "imagenet-v2", "test", root)


def test_cifar100_python_pickles(anchor_table, cache, tmp_path):
    """cifar-100-python/{train,test,meta} pickles (bytes keys, (n, 3072) channel-planar rows) of
    Fashion-MNIST images resized to 32x32x3; 100 fine classes, 18 templates."""
    names = sorted(CIFAR100_NAMES[:90] + [n.replace(" ", "_") for n in FM_NAMES])
    assert len(set(names)) == 100

    def batch(counts: dict[int, int], skip: int):
        images, labels = [], []
        for fm, count in counts.items():
            for image in pick(fm, count, skip):
                resized = Image.fromarray(image).resize((32, 32), Image.BILINEAR).convert("RGB")
                images.append(np.asarray(resized, dtype=np.uint8))
                labels.append(names.index(FM_NAMES[fm].replace(" ", "_")))
        data = np.stack([im.transpose(2, 0, 1).reshape(-1) for im in images])
        raw = {
            b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
            b"batch_label": b"testing batch 1 of 1",
            b"fine_labels": labels,
            b"coarse_labels": [label % 20 for label in labels],
            b"data": data,
        }
        return raw, images, labels

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    # these sandals have their class 5th (2 of them) and 2nd among the 100
    test, images, labels = batch({SANDAL: 9, SNEAKER: 5, DRESS: 4, BAG: 4}, skip=40)
    train, *_ = batch({SNEAKER: 2, BAG: 2}, skip=80)
    meta = {b"fine_label_names": [n.encode() for n in names], b"coarse_label_names": [b"x"] * 20}
    for file, content in (("test", test), ("train", train), ("meta", meta)):
        (folder / file).write_bytes(pickle.dumps(content, protocol=2))

    class_names = [n.replace("_", " ") for n in names]
    expected = Labelled(images, labels, class_names, CIFAR_TEMPLATES)
    row, scores = check_classification(anchor_table, cache, expected, "cifar100", "test", tmp_path)
    assert row["acc5"] >= row["acc1"]
    ranked = best_first(scores)
    # the data tell the metrics from near misses: some true class is 5th (acc5 is not acc4)
    # and some 2nd (acc1 is not acc2)
    assert np.any(ranked[:, 4] == labels) and np.any(ranked[:, 1] == labels)


# -------------------------------------------------------------------------------- retrieval


@dataclass(frozen=True)
class Captioned:
    """What a retrieval layout holds, in the order its format defines: `captions[i]` are
    image i's captions in file order."""

    images: list[Path]
    captions: list[list[str]]

    def flat(self) -> tuple[list[str], np.ndarray]:
        owner = np.repeat(np.arange(len(self.images)), [len(c) for c in self.captions])
        return [c for group in self.captions for c in group], owner

    def part(self, rows: list[int]) -> Captioned:
        return Captioned([self.images[i] for i in rows], [self.captions[i] for i in rows])


def retrieval_scores(table, layout: Captioned) -> np.ndarray:
    """Dense (images, captions) ASIF similarities of the layout, computed here."""
    model = reference_model(table)
    texts, _ = layout.flat()
    image_relative = model.image_relative(embed_images(list(layout.images)))
    return similarity(image_relative, model.text_relative(embed_texts(texts)))


def check_retrieval(table, cache, layout: Captioned, bench: RetrievalBenchmark) -> dict:
    """The row of `bench` (read from `layout`) against brute force; returns both."""
    assert isinstance(bench, RetrievalBenchmark)
    texts, owner = layout.flat()
    assert [Path(p).resolve() for p in bench.data.images] == [p.resolve() for p in layout.images]
    assert bench.captions == texts
    assert bench.caption_image.tolist() == owner.tolist()
    row = evaluate(table, bench, cache)
    scores = retrieval_scores(table, layout)
    assert scores.shape == (len(layout.images), len(texts))
    expected = retrieval_reference(scores, owner)
    assert set(expected) == set(RETRIEVAL_METRICS)
    assert_metrics(row, expected)
    assert differs(row, swapped(expected))  # image and text retrieval are not mixed up
    assert (row["n_images"], row["n_texts"]) == (len(layout.images), len(texts))
    assert row["acc1"] is None and row["n_classes"] is None and row["strategy"] is None
    return row


def class_captions(rng: np.random.Generator, fm_class: int, count: int, templates) -> list[str]:
    """`count` different sentences about the class, as annotators' captions would be."""
    chosen = rng.choice(len(templates), count, replace=False)
    return [templates[t].format(FM_NAMES[fm_class]) for t in chosen]


def karpathy_coco(root: Path) -> Captioned:
    """dataset_coco.json (Karpathy's split file), images in val2014/ and train2014/, test
    entries interleaved with val and train ones, 5 captions each."""
    rng = np.random.default_rng(3)
    test_classes = [SNEAKER, TROUSER, BAG, SANDAL]
    plan = [(fm, "test", image) for fm in test_classes for image in pick(fm, 5, skip=60)]
    plan = [plan[i] for i in rng.permutation(len(plan))]
    plan[3:3] = [(TSHIRT, "val", pick(TSHIRT, 1)[0])]
    plan[9:9] = [(TSHIRT, "train", pick(TSHIRT, 1, skip=1)[0])]
    plan.append((PULLOVER, "restval", pick(PULLOVER, 1)[0]))
    entries, layout = [], Captioned([], [])
    sentence_id = 0
    for i, (fm, split, image) in enumerate(plan):
        folder = "train2014" if split == "train" else "val2014"
        name = f"COCO_{folder}_{1000 + 7 * i:012d}.jpg"
        path = save(image, root / folder / name)
        captions = class_captions(rng, fm, 5, CAPTION_TEMPLATES)
        sentences = []
        for raw in captions:
            tokens = raw.rstrip(".").split()
            sentences.append({"tokens": tokens, "raw": raw, "imgid": i, "sentid": sentence_id})
            sentence_id += 1
        entries.append(
            {
                "filepath": folder,
                "sentids": [s["sentid"] for s in sentences],
                "filename": name,
                "imgid": i,
                "split": split,
                "sentences": sentences,
                "cocoid": 1000 + 7 * i,
            }
        )
        if split == "test":
            layout.images.append(path)
            layout.captions.append(captions)
    (root / "dataset_coco.json").write_text(json.dumps({"images": entries, "dataset": "coco"}))
    return layout


def test_karpathy_coco_split_file(anchor_table, cache, tmp_path):
    layout = karpathy_coco(tmp_path)
    bench = load_benchmark("coco", "test", tmp_path)
    check_retrieval(anchor_table, cache, layout, bench)


def test_clip_benchmark_flickr30k_annotations(anchor_table, cache, tmp_path):
    """flickr30k_test_karpathy.txt (a header, then `name.jpg,caption` lines in no particular
    order; captions hold commas) with the images in flickr30k-images/."""
    rng = np.random.default_rng(4)
    images = [(fm, image) for fm in (ANKLE_BOOT, PULLOVER, SANDAL) for image in pick(fm, 6, 70)]
    lines, captions_of = [], {}
    for i, (fm, image) in enumerate(images):
        name = f"{(1_000_003 * (i + 1)) % 9_999_991}.jpg"
        save(image, tmp_path / "flickr30k-images" / name)
        captions_of[name] = class_captions(rng, fm, 5, OWN_TEMPLATES[:3] + CAPTION_TEMPLATES[:3])
        lines += [(name, c) for c in captions_of[name]]
    lines = [lines[i] for i in rng.permutation(len(lines))]
    text = "image,caption\n" + "".join(f"{name},{caption}\n" for name, caption in lines)
    (tmp_path / "flickr30k_test_karpathy.txt").write_text(text)

    order = list(dict.fromkeys(name for name, _ in lines))  # first appearance
    layout = Captioned(
        [tmp_path / "flickr30k-images" / name for name in order],
        [[c for n, c in lines if n == name] for name in order],  # file order
    )
    bench = load_benchmark("flickr30k", "test", tmp_path)
    check_retrieval(anchor_table, cache, layout, bench)


def caption_folder(root: Path, seed: int = 5) -> Captioned:
    """Images (some in a subfolder, two of them duplicates of others: exact score ties) with
    1-3 caption lines in a same-stem .txt; one image without captions, skipped."""
    rng = np.random.default_rng(seed)
    plan = [(fm, image) for fm in (TSHIRT, SNEAKER, BAG) for image in pick(fm, 5, skip=80)]
    plan += [plan[2], plan[9]]  # the same pixels again, under other names
    files = []
    for i, (fm, image) in enumerate(plan):
        sub = "more" if i % 4 == 3 else ""
        path = save(image, root / sub / f"img_{(i * 7) % 17:02d}.png")
        captions = class_captions(rng, fm, int(rng.integers(1, 4)), OWN_TEMPLATES)
        path.with_suffix(".txt").write_text("\n".join(captions) + "\n\n")
        files.append((path, captions))
    save(pick(SANDAL, 1)[0], root / "uncaptioned.png")
    files.sort()  # read in sorted path order
    return Captioned([p for p, _ in files], [c for _, c in files])


def test_caption_file_folder(anchor_table, cache, tmp_path):
    layout = caption_folder(tmp_path)
    bench = load_benchmark("captioned-folder", "test", tmp_path)
    assert bench.data.skipped == 1
    check_retrieval(anchor_table, cache, layout, bench)


def test_limit_keeps_every_caption_of_each_sampled_image(anchor_table, cache, tmp_path):
    """A retrieval benchmark cut to `limit` images keeps every caption of each image drawn (and
    no other), and is measured as that smaller set."""
    layout = caption_folder(tmp_path, seed=6)
    bench = load_benchmark("captioned-folder", "test", tmp_path, limit=8, seed=3)
    assert len(bench) == 8
    where = {p.resolve(): i for i, p in enumerate(layout.images)}
    rows = [where[Path(p).resolve()] for p in bench.data.images]
    assert rows == sorted(rows) and len(set(rows)) == 8
    check_retrieval(anchor_table, cache, layout.part(rows), bench)


def test_retrieval_ties_rank_the_lower_index_first(anchor_table, cache, tmp_path):
    """Twelve copies of one image, every caption the same sentence: every score ties, so the
    recalls follow from the order alone (lower index first) and are known by hand. Image 0 has
    3 captions, image 11 two, the others one (15 captions)."""
    image = pick(SNEAKER, 1, skip=90)[0]
    counts = [3] + [1] * 10 + [2]
    for i, count in enumerate(counts):
        save(image, tmp_path / f"{i:02d}.png").with_suffix(".txt").write_text(
            "a photo of a sneaker.\n" * count
        )
    layout = Captioned(
        [tmp_path / f"{i:02d}.png" for i in range(12)],
        [["a photo of a sneaker."] * c for c in counts],
    )
    bench = load_benchmark("captioned-folder", "test", tmp_path)
    row = check_retrieval(anchor_table, cache, layout, bench)
    # image retrieval: caption of image i ranks it at i; 3 + 1 + 1 + 1 + 1 captions for i < 5
    # text retrieval: image i's first caption, at 0, 3, 4, 5, ..., 12, 13, ranks it there
    by_hand = {
        "image_retrieval_recall_at_1": 3 / 15,
        "image_retrieval_recall_at_5": 7 / 15,
        "image_retrieval_recall_at_10": 12 / 15,
        "text_retrieval_recall_at_1": 1 / 12,
        "text_retrieval_recall_at_5": 3 / 12,
        "text_retrieval_recall_at_10": 8 / 12,
    }
    assert_metrics(row, by_hand)
    scores = retrieval_scores(anchor_table, layout)
    assert np.all(scores == scores[0, 0])  # all tied indeed
    assert differs(row, retrieval_reference(scores, layout.flat()[1], lower_first=False))
