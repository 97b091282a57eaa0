"""AsifModel: anchor pairs plus two frozen encoders make an image-text model, with no training."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asif.encoders.base import ImageEncoder, ImageInput, TextEncoder
from asif.errors import (
    DimensionMismatchError,
    EmptyInputError,
    EncoderMismatchError,
    require_finite,
)
from asif.model.relative import (
    DEFAULT_CHUNK,
    DEFAULT_K,
    DEFAULT_P,
    SparseRelative,
    normalize_rows,
    relative_representation,
    similarity,
)
from asif.model.settings import ModelSettings
from asif.model.zero_shot import (
    DEFAULT_TEMPLATES,
    Prediction,
    Strategy,
    ZeroShotClassifier,
    prompts,
)
from asif.scan.matrix import AnchorMatrix, Precision
from asif.store.ids import anchor_id


@dataclass(frozen=True)
class Contribution:
    """One anchor pair's share of an image-text score: r_i(x) * r_i(y)."""

    anchor_id: str
    caption: str
    url: str | None
    contribution: float
    image_weight: float
    text_weight: float


@dataclass(frozen=True)
class Explanation:
    """Why an image got a label: the anchor pairs that contributed most to the score."""

    label: str
    prompt: str
    score: float
    anchors: list[Contribution]

    def __str__(self) -> str:
        lines = [f"{self.label!r} (prompt {self.prompt!r}) scored {self.score:.4f} because of:"]
        for a in self.anchors:
            share = a.contribution / self.score if self.score > 0 else 0.0
            where = f" [{a.url}]" if a.url else ""
            lines.append(f"  {a.contribution:.4f} ({share:5.1%})  {a.caption!r}{where}")
        return "\n".join(lines)


@dataclass
class AnchorSet:
    """The anchor pairs: ids, captions, urls and both embedding matrices, row-aligned."""

    ids: list[str]
    captions: list[str]
    urls: list[str | None]
    image: AnchorMatrix
    text: AnchorMatrix
    _row: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.ids)
        sizes = {n, len(self.captions), len(self.urls), len(self.image), len(self.text)}
        if len(sizes) != 1:
            raise ValueError(
                f"anchor columns differ in length: {len(self.ids)} ids, {len(self.captions)} "
                f"captions, {len(self.urls)} urls, {len(self.image)} image and "
                f"{len(self.text)} text embeddings"
            )
        self._row = {a: i for i, a in enumerate(self.ids)}
        if len(self._row) != n:
            raise ValueError("anchor ids must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """Row numbers of `ids`; unknown ids are a KeyError naming them."""
        missing = [a for a in ids if a not in self._row]
        if missing:
            raise KeyError(f"no anchors with ids {missing[:5]}{'...' if len(missing) > 5 else ''}")
        return np.array([self._row[a] for a in ids], dtype=np.int64)

    def extend(
        self,
        ids: Sequence[str],
        captions: Sequence[str],
        urls: Sequence[str | None],
        image: AnchorMatrix,
        text: AnchorMatrix,
    ) -> AnchorSet:
        """This set plus new anchors, without re-indexing the old ids.

        `image` and `text` are this set's matrices with the new rows appended (see
        `AnchorMatrix.append`). A new id equal to an old one points `rows()` at the new row
        (the caller retires the old row); this set is unchanged.
        """
        n = len(self) + len(ids)
        if not (len(captions) == len(urls) == len(ids)) or {len(image), len(text)} != {n}:
            raise ValueError(
                f"extending {len(self)} anchors by {len(ids)} ids, {len(captions)} captions, "
                f"{len(urls)} urls needs {n}-row matrices, got {len(image)} and {len(text)}"
            )
        out = copy.copy(self)
        out.ids, out.captions = self.ids + list(ids), self.captions + list(captions)
        out.urls, out.image, out.text = self.urls + list(urls), image, text
        out._row = self._row.copy()
        out._row.update(zip(ids, range(len(self), n), strict=True))
        return out

    def take(self, rows: np.ndarray) -> AnchorSet:
        """The anchors at `rows` (indices or boolean mask)."""
        rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        return AnchorSet(
            [self.ids[i] for i in rows],
            [self.captions[i] for i in rows],
            [self.urls[i] for i in rows],
            self.image.take(rows),
            self.text.take(rows),
        )


class AsifModel:
    """An ASIF image-text model: anchor pairs, k, p, and (optionally) the two frozen encoders.

    Every method that takes images or texts also has an `..._embeddings` twin for inputs
    already embedded with the same encoders; the encoders are needed only for raw inputs.
    """

    def __init__(
        self,
        anchors: AnchorSet,
        *,
        image_encoder_name: str,
        text_encoder_name: str,
        k: int = DEFAULT_K,
        p: float = DEFAULT_P,
        chunk_size: int = DEFAULT_CHUNK,
        image_encoder: ImageEncoder | None = None,
        text_encoder: TextEncoder | None = None,
    ) -> None:
        self.anchors = anchors
        self.image_encoder_name = image_encoder_name
        self.text_encoder_name = text_encoder_name
        self.k, self.p, self.chunk_size = k, p, chunk_size
        self.image_encoder: ImageEncoder | None = None
        self.text_encoder: TextEncoder | None = None
        self.attach_encoders(image_encoder, text_encoder)

    @classmethod
    def from_embeddings(
        cls,
        image_embeddings: np.ndarray,
        text_embeddings: np.ndarray,
        captions: Sequence[str],
        *,
        ids: Sequence[str] | None = None,
        urls: Sequence[str | None] | None = None,
        image_encoder_name: str,
        text_encoder_name: str,
        precision: Precision = "float32",
        **kwargs,
    ) -> AsifModel:
        """A model from anchor embeddings (rows are L2-normalised here)."""
        anchors = _anchor_set(image_embeddings, text_embeddings, captions, ids, urls, precision)
        return cls(
            anchors,
            image_encoder_name=image_encoder_name,
            text_encoder_name=text_encoder_name,
            **kwargs,
        )

    @classmethod
    def from_pairs(
        cls,
        images: Sequence[ImageInput],
        captions: Sequence[str],
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        *,
        urls: Sequence[str | None] | None = None,
        batch_size: int = 32,
        progress: bool = False,
        precision: Precision = "float32",
        **kwargs,
    ) -> AsifModel:
        """Embed anchor (image, caption) pairs with the encoders and build a model."""
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} anchor images but {len(captions)} captions")
        return cls.from_embeddings(
            image_encoder.encode(images, batch_size=batch_size, progress=progress),
            text_encoder.encode(captions, batch_size=batch_size, progress=progress),
            captions,
            urls=urls,
            image_encoder_name=image_encoder.name,
            text_encoder_name=text_encoder.name,
            image_encoder=image_encoder,
            text_encoder=text_encoder,
            precision=precision,
            **kwargs,
        )

    # -- encoders -------------------------------------------------------------------------

    def attach_encoders(
        self, image_encoder: ImageEncoder | None, text_encoder: TextEncoder | None
    ) -> None:
        """Use these encoders for raw inputs; they must be the ones the anchors were made with."""
        for enc, expected, dim, kind in (
            (image_encoder, self.image_encoder_name, self.anchors.image.dim, "image"),
            (text_encoder, self.text_encoder_name, self.anchors.text.dim, "text"),
        ):
            if enc is None:
                continue
            if enc.name != expected:
                raise EncoderMismatchError(
                    f"the anchors' {kind} embeddings come from {expected!r}, "
                    f"not from the given {kind} encoder {enc.name!r}"
                )
            if enc.dim != dim:
                raise DimensionMismatchError(
                    f"{kind} encoder {enc.name!r} gives {enc.dim}-d embeddings, anchors have {dim}"
                )
        self.image_encoder = image_encoder or self.image_encoder
        self.text_encoder = text_encoder or self.text_encoder

    def _image_encoder(self) -> ImageEncoder:
        if self.image_encoder is None:
            raise RuntimeError(
                f"no image encoder attached: load {self.image_encoder_name!r} and call "
                "attach_encoders(), or pass embeddings to the *_embeddings methods"
            )
        return self.image_encoder

    def _text_encoder(self) -> TextEncoder:
        if self.text_encoder is None:
            raise RuntimeError(
                f"no text encoder attached: load {self.text_encoder_name!r} and call "
                "attach_encoders(), or pass embeddings to the *_embeddings methods"
            )
        return self.text_encoder

    def embed_images(
        self, images: Sequence[ImageInput], batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        return self._image_encoder().encode(images, batch_size=batch_size, progress=progress)

    def embed_texts(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        return self._text_encoder().encode(texts, batch_size=batch_size, progress=progress)

    # -- relative representations ---------------------------------------------------------

    def image_relative(self, image_embeddings: np.ndarray) -> SparseRelative:
        """r(x) of image embeddings."""
        return self._relative(image_embeddings, self.anchors.image, "image")

    def text_relative(self, text_embeddings: np.ndarray) -> SparseRelative:
        """r(y) of text embeddings."""
        return self._relative(text_embeddings, self.anchors.text, "text")

    def _relative(self, x: np.ndarray, anchors: AnchorMatrix, kind: str) -> SparseRelative:
        x = checked_queries(x, anchors, kind)
        return relative_representation(x, anchors, self.k, self.p, self.chunk_size)

    # -- zero-shot classification ------------------------------------------------------------

    def zero_shot_classifier(
        self,
        class_names: Sequence[str],
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        strategy: Strategy = "max",
        prompt_embeddings: np.ndarray | None = None,
    ) -> ZeroShotClassifier:
        """A classifier over `class_names`; prompt embeddings are computed unless given."""
        texts = prompts(class_names, templates)
        if prompt_embeddings is None:
            prompt_embeddings = self.embed_texts(texts)
        rel = self.text_relative(prompt_embeddings)
        return ZeroShotClassifier.from_prompt_relatives(class_names, templates, rel, strategy)

    def classify(
        self,
        images: Sequence[ImageInput],
        class_names: Sequence[str],
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        strategy: Strategy = "max",
        threshold: float | None = None,
        progress: bool = False,
    ) -> Prediction:
        """Zero-shot labels for images; "unknown" where the best score is below `threshold`."""
        classifier = self.zero_shot_classifier(class_names, templates, strategy)
        return self.classify_embeddings(
            self.embed_images(images, progress=progress), classifier, threshold
        )

    def classify_embeddings(
        self,
        image_embeddings: np.ndarray,
        classifier: ZeroShotClassifier,
        threshold: float | None = None,
    ) -> Prediction:
        return classifier.predict(self.image_relative(image_embeddings), threshold)

    # -- explanations ------------------------------------------------------------------------

    def explain(
        self,
        image: ImageInput,
        class_names: Sequence[str],
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        strategy: Strategy = "max",
        label: str | None = None,
        top: int = 5,
    ) -> Explanation:
        """The anchor pairs that decided `label` (default: the predicted class) for one image."""
        classifier = self.zero_shot_classifier(class_names, templates, strategy)
        return self.explain_embedding(self.embed_images([image])[0], classifier, label, top)

    def explain_embedding(
        self,
        image_embedding: np.ndarray,
        classifier: ZeroShotClassifier,
        label: str | None = None,
        top: int = 5,
    ) -> Explanation:
        r_image = self.image_relative(np.asarray(image_embedding)[None, :])
        if label is None:
            label_id = int(classifier.scores(r_image)[0].argmax())
        elif label in classifier.class_names:
            label_id = classifier.class_names.index(label)
        else:
            raise ValueError(f"label {label!r} is not one of {classifier.class_names}")
        prompt, r_text = classifier.deciding_vector(label_id, r_image)
        score = float(similarity(r_image, r_text)[0, 0])
        contributions = self.contributions(r_image, r_text, top)
        return Explanation(classifier.class_names[label_id], prompt, score, contributions)

    def contributions(
        self, r_image: SparseRelative, r_text: SparseRelative, top: int = 5
    ) -> list[Contribution]:
        """The `top` anchors by r_i(x) * r_i(y) for one image and one text vector."""
        img = dict(zip(r_image.indices[0].tolist(), r_image.values[0].tolist(), strict=True))
        pairs = zip(r_text.indices[0].tolist(), r_text.values[0].tolist(), strict=True)
        txt = {i: v for i, v in pairs if v}
        shared = sorted(
            ((img[i] * txt[i], i) for i in img.keys() & txt.keys() if img[i] * txt[i] > 0),
            key=lambda t: (-t[0], t[1]),
        )[:top]
        a = self.anchors
        return [
            Contribution(a.ids[i], a.captions[i], a.urls[i], c, img[i], txt[i]) for c, i in shared
        ]

    # -- retrieval ---------------------------------------------------------------------------

    def retrieve_embeddings(
        self,
        query_embeddings: np.ndarray,
        gallery_embeddings: np.ndarray,
        query_modality: str,
        top: int = 5,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rank a gallery of the other modality for each query: (indices, scores), best first."""
        if query_modality not in ("image", "text"):
            raise ValueError(f"query_modality must be 'image' or 'text', got {query_modality!r}")
        if len(gallery_embeddings) == 0:
            raise EmptyInputError("the gallery to retrieve from is empty")
        to_image, to_text = self.image_relative, self.text_relative
        if query_modality == "image":
            scores = similarity(to_image(query_embeddings), to_text(gallery_embeddings))
        else:
            scores = similarity(to_text(query_embeddings), to_image(gallery_embeddings))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
        return order, np.take_along_axis(scores, order, 1)

    def retrieve_captions(
        self, images: Sequence[ImageInput], captions: Sequence[str], top: int = 5
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each image, the `top` best captions among `captions`: (indices, scores)."""
        if not captions:
            raise EmptyInputError("the caption list to retrieve from is empty")
        return self.retrieve_embeddings(
            self.embed_images(images), self.embed_texts(captions), "image", top
        )

    def retrieve_images(
        self, texts: Sequence[str], images: Sequence[ImageInput], top: int = 5
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each text, the `top` best images among `images`: (indices, scores)."""
        if not images:
            raise EmptyInputError("the image list to retrieve from is empty")
        return self.retrieve_embeddings(
            self.embed_texts(texts), self.embed_images(images), "text", top
        )

    # -- updating the anchor set -------------------------------------------------------------

    def add_anchors(
        self,
        image_embeddings: np.ndarray,
        text_embeddings: np.ndarray,
        captions: Sequence[str],
        ids: Sequence[str] | None = None,
        urls: Sequence[str | None] | None = None,
    ) -> None:
        """Add anchor pairs in place; existing anchors are not touched or recomputed."""
        new = _anchor_set(image_embeddings, text_embeddings, captions, ids, urls, "float32")
        clash = set(new.ids) & set(self.anchors.ids)
        if clash:
            raise ValueError(f"anchor ids already present: {sorted(clash)[:5]}")
        for kind, have, got in (
            ("image", self.anchors.image.dim, new.image.dim),
            ("text", self.anchors.text.dim, new.text.dim),
        ):
            if have != got:
                raise DimensionMismatchError(
                    f"new {kind} embeddings are {got}-d; the anchors' are {have}-d"
                )
        a = self.anchors
        self.anchors = AnchorSet(
            a.ids + new.ids,
            a.captions + new.captions,
            a.urls + new.urls,
            a.image.append(new.image.to_float32()),
            a.text.append(new.text.to_float32()),
        )

    def remove_anchors(self, ids: Sequence[str]) -> None:
        """Remove anchor pairs by id, in place."""
        keep = np.ones(len(self.anchors), dtype=bool)
        keep[self.anchors.rows(ids)] = False
        if not keep.any():
            raise EmptyInputError("removing these ids would leave the model with no anchors")
        self.anchors = self.anchors.take(keep)

    def prune(
        self,
        class_names: Sequence[str],
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        prompt_embeddings: np.ndarray | None = None,
    ) -> AsifModel:
        """A smaller model keeping only the anchors in the support of the task's prompts.

        Only those anchors can add to an image's score for these classes, so predictions
        change only through the images' re-normalisation over fewer anchors.
        """
        classifier = self.zero_shot_classifier(class_names, templates, "max", prompt_embeddings)
        rel = classifier.text_relative
        keep = np.unique(rel.indices[rel.values > 0])
        return self.with_anchors(self.anchors.take(keep))

    def compress(self, precision: Precision) -> AsifModel:
        """The same model with anchor embeddings stored at `precision`."""
        a = self.anchors
        image = AnchorMatrix.from_float(a.image.to_float32(), precision)
        text = AnchorMatrix.from_float(a.text.to_float32(), precision)
        return self.with_anchors(AnchorSet(a.ids, a.captions, a.urls, image, text))

    def with_anchors(self, anchors: AnchorSet) -> AsifModel:
        """A model with the same encoders, k and p over other anchors."""
        return AsifModel(
            anchors,
            image_encoder_name=self.image_encoder_name,
            text_encoder_name=self.text_encoder_name,
            k=self.k,
            p=self.p,
            chunk_size=self.chunk_size,
            image_encoder=self.image_encoder,
            text_encoder=self.text_encoder,
        )

    @property
    def settings(self) -> ModelSettings:
        return ModelSettings(
            self.image_encoder_name, self.text_encoder_name, self.k, self.p, self.chunk_size
        )

    def with_settings(self, **changes: Any) -> AsifModel:
        """The same anchors and encoders with settings changed (`ModelSettings.replace`)."""
        s = self.settings.replace(**changes)
        out = self.with_anchors(self.anchors)
        out.k, out.p, out.chunk_size = s.k, s.p, s.chunk_size
        return out

    def save(self, path: str | Path) -> Path:
        """Save anchors and settings (not the encoders) to the folder `path`."""
        from asif.model.folder import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path, **kwargs) -> AsifModel:
        """Load a saved model; see `asif.model.folder.load_model` for the options."""
        from asif.model.folder import load_model

        return load_model(path, **kwargs)

    def __len__(self) -> int:
        return len(self.anchors)

    def __repr__(self) -> str:
        return (
            f"AsifModel({len(self)} anchors, image={self.image_encoder_name!r}, "
            f"text={self.text_encoder_name!r}, k={self.k}, p={self.p}, "
            f"precision={self.anchors.image.precision})"
        )


def checked_queries(x: np.ndarray, anchors: AnchorMatrix, kind: str) -> np.ndarray:
    """`x` as float32 (n, d) rows, or a clear error if d is not the anchors' `kind` width."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != anchors.dim:
        raise DimensionMismatchError(
            f"{kind} embeddings have shape {x.shape}; the anchors' {kind} embeddings "
            f"are {anchors.dim}-d"
        )
    require_finite(x, f"{kind} embeddings")
    return x


def _anchor_set(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    captions: Sequence[str],
    ids: Sequence[str] | None,
    urls: Sequence[str | None] | None,
    precision: Precision,
) -> AnchorSet:
    captions = list(captions)
    if not captions:
        raise EmptyInputError("no anchor pairs given")
    urls = list(urls) if urls is not None else [None] * len(captions)
    image_embeddings = np.asarray(image_embeddings, dtype=np.float32)
    if ids is None:
        ids = [
            anchor_id(u or "sha256:" + hashlib.sha256(row.tobytes()).hexdigest(), c)
            for u, c, row in zip(urls, captions, image_embeddings, strict=False)
        ]
    return AnchorSet(
        list(ids),
        captions,
        urls,
        AnchorMatrix.from_float(normalize_rows(image_embeddings), precision),
        AnchorMatrix.from_float(normalize_rows(text_embeddings), precision),
    )
