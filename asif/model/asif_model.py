"""AsifModel: anchor pairs plus two frozen encoders make an image-text model, with no training."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from asif.encoders.base import ImageEncoder, ImageInput, TextEncoder
from asif.errors import (
    DimensionMismatchError,
    EmptyInputError,
    EncoderMismatchError,
    LabelError,
    SettingsError,
    UnsupportedOperationError,
)
from asif.model.anchor_set import AnchorSet
from asif.model.explain import Contribution, Explanation, contributions
from asif.model.folder import read_folder, write_folder
from asif.model.relative import SparseRelative, normalize_rows, relative, similarity
from asif.model.settings import DEFAULT_K, DEFAULT_P, ModelSettings
from asif.model.zero_shot import (
    DEFAULT_STRATEGY,
    DEFAULT_TEMPLATES,
    Prediction,
    Strategy,
    ZeroShotClassifier,
    prompts,
)
from asif.scan.base import MODALITIES, Modality, TopK
from asif.scan.exact import DEFAULT_CHUNK, ExactScan
from asif.scan.matrix import AnchorMatrix, Precision
from asif.scan.tombstones import TombstoneScan


class AsifModel:
    """An ASIF image-text model: anchor pairs, a top-k backend over their embeddings, the
    settings (encoder names, k, p) and, optionally, the two frozen encoders.

    The backend (`asif.scan`) decides what the model offers beyond queries: over an
    `ExactScan` anchors can be added, removed, pruned, compressed and saved; over a
    `TombstoneScan` (live updates) or an `IndexScan` (a LanceDB vector index) they cannot.
    Every method that takes images or texts also has an `..._embeddings` twin for inputs
    already embedded with the same encoders; the encoders are needed only for raw inputs.
    """

    def __init__(
        self,
        anchors: AnchorSet,
        scan: TopK,
        settings: ModelSettings,
        *,
        image_encoder: ImageEncoder | None = None,
        text_encoder: TextEncoder | None = None,
    ) -> None:
        if len(anchors) != scan.n_rows:
            raise ValueError(f"{len(anchors)} anchors but a backend over {scan.n_rows} rows")
        self.anchors = anchors
        self.scan = scan
        self._settings = settings
        self.image_encoder: ImageEncoder | None = None
        self.text_encoder: TextEncoder | None = None
        self.attach_encoders(image_encoder, text_encoder)

    @classmethod
    def from_embeddings(
        cls,
        image_embeddings: np.ndarray,
        text_embeddings: np.ndarray,
        captions: Sequence[str],
        settings: ModelSettings,
        *,
        ids: Sequence[str] | None = None,
        urls: Sequence[str | None] | None = None,
        precision: Precision = "float32",
        chunk_size: int = DEFAULT_CHUNK,
    ) -> AsifModel:
        """A model from anchor embeddings (rows are L2-normalised here), scanned exactly."""
        anchors = AnchorSet.build(captions, image_embeddings, ids, urls)
        scan = ExactScan(
            AnchorMatrix.from_float(normalize_rows(image_embeddings), precision),
            AnchorMatrix.from_float(normalize_rows(text_embeddings), precision),
            chunk_size,
        )
        return cls(anchors, scan, settings)

    @classmethod
    def from_pairs(
        cls,
        images: Sequence[ImageInput],
        captions: Sequence[str],
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        *,
        k: int = DEFAULT_K,
        p: float = DEFAULT_P,
        urls: Sequence[str | None] | None = None,
        batch_size: int = 32,
        progress: bool = False,
        precision: Precision = "float32",
    ) -> AsifModel:
        """Embed anchor (image, caption) pairs with the encoders and build a model."""
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} anchor images but {len(captions)} captions")
        model = cls.from_embeddings(
            image_encoder.encode(images, batch_size=batch_size, progress=progress),
            text_encoder.encode(captions, batch_size=batch_size, progress=progress),
            captions,
            ModelSettings(image_encoder.name, text_encoder.name, k, p),
            urls=urls,
            precision=precision,
        )
        model.attach_encoders(image_encoder, text_encoder)
        return model

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        image_encoder: ImageEncoder | None = None,
        text_encoder: TextEncoder | None = None,
        mmap: bool = True,
    ) -> AsifModel:
        """Load a model folder (`save`); embeddings are memory-mapped unless `mmap` is False."""
        anchors, scan, settings = read_folder(path, mmap=mmap)
        model = cls(anchors, scan, settings)
        model.attach_encoders(image_encoder, text_encoder)
        return model

    # -- settings and encoders ------------------------------------------------------------

    @property
    def settings(self) -> ModelSettings:
        return self._settings

    def with_settings(self, **changes: Any) -> AsifModel:
        """The same anchors, backend and encoders with settings changed (nothing copied)."""
        return self.with_anchors(self.anchors, self.scan, self._settings.replace(**changes))

    def with_anchors(
        self, anchors: AnchorSet, scan: TopK, settings: ModelSettings | None = None
    ) -> AsifModel:
        """A model over other anchors and backend, with the same encoders (and settings)."""
        return AsifModel(
            anchors,
            scan,
            settings or self._settings,
            image_encoder=self.image_encoder,
            text_encoder=self.text_encoder,
        )

    def attach_encoders(
        self, image_encoder: ImageEncoder | None, text_encoder: TextEncoder | None
    ) -> None:
        """Use these encoders for raw inputs; they must be the ones the anchors were made with."""
        s = self._settings
        checks: tuple[tuple[ImageEncoder | TextEncoder | None, str, Modality], ...] = (
            (image_encoder, s.image_encoder, "image"),
            (text_encoder, s.text_encoder, "text"),
        )
        for enc, expected, kind in checks:
            if enc is None:
                continue
            if enc.name != expected:
                raise EncoderMismatchError(
                    f"the anchors' {kind} embeddings come from {expected!r}, "
                    f"not from the given {kind} encoder {enc.name!r}"
                )
            dim = self.scan.dim(kind)
            if enc.dim != dim:
                raise DimensionMismatchError(
                    f"{kind} encoder {enc.name!r} gives {enc.dim}-d embeddings, anchors have {dim}"
                )
        self.image_encoder = image_encoder or self.image_encoder
        self.text_encoder = text_encoder or self.text_encoder

    def embed_images(
        self, images: Sequence[ImageInput], batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        if self.image_encoder is None:
            raise _no_encoder("image", self._settings.image_encoder)
        return self.image_encoder.encode(images, batch_size=batch_size, progress=progress)

    def embed_texts(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        if self.text_encoder is None:
            raise _no_encoder("text", self._settings.text_encoder)
        return self.text_encoder.encode(texts, batch_size=batch_size, progress=progress)

    # -- relative representations ---------------------------------------------------------

    def relative(self, embeddings: np.ndarray, modality: Modality) -> SparseRelative:
        """r(x) of `modality` embeddings over this model's anchors."""
        if modality not in MODALITIES:
            raise SettingsError(f"modality must be one of {MODALITIES}, got {modality!r}")
        return relative(self.scan, embeddings, modality, self._settings.k, self._settings.p)

    def image_relative(self, image_embeddings: np.ndarray) -> SparseRelative:
        return self.relative(image_embeddings, "image")

    def text_relative(self, text_embeddings: np.ndarray) -> SparseRelative:
        return self.relative(text_embeddings, "text")

    # -- zero-shot classification ---------------------------------------------------------

    def zero_shot_classifier(
        self,
        class_names: Sequence[str],
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        strategy: Strategy = DEFAULT_STRATEGY,
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
        strategy: Strategy = DEFAULT_STRATEGY,
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

    # -- explanations ---------------------------------------------------------------------

    def explain(
        self,
        image: ImageInput,
        class_names: Sequence[str],
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        strategy: Strategy = DEFAULT_STRATEGY,
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
        return self.explain_relative(r_image, classifier, label, top)

    def explain_relative(
        self,
        r_image: SparseRelative,
        classifier: ZeroShotClassifier,
        label: str | None = None,
        top: int = 5,
    ) -> Explanation:
        """As `explain_embedding`, from the image's r(x) (one row)."""
        if label is None:
            label_id = int(classifier.scores(r_image)[0].argmax())
        elif label in classifier.class_names:
            label_id = classifier.class_names.index(label)
        else:
            raise LabelError(f"label {label!r} is not one of {classifier.class_names}")
        prompt, r_text = classifier.deciding_vector(label_id, r_image)
        score = float(similarity(r_image, r_text)[0, 0])
        found = self.contributions(r_image, r_text, top)
        return Explanation(classifier.class_names[label_id], prompt, score, found)

    def contributions(
        self, r_image: SparseRelative, r_text: SparseRelative, top: int = 5
    ) -> list[Contribution]:
        """The `top` anchors by r_i(x) * r_i(y) for one image and one text vector."""
        return contributions(self.anchors, r_image, r_text, top)

    # -- retrieval ------------------------------------------------------------------------

    def retrieve_embeddings(
        self,
        query_embeddings: np.ndarray,
        gallery_embeddings: np.ndarray,
        query_modality: Modality,
        top: int = 5,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rank a gallery of the other modality for each query: (indices, scores), best first."""
        if len(gallery_embeddings) == 0:
            raise EmptyInputError("the gallery to retrieve from is empty")
        other: Modality = "text" if query_modality == "image" else "image"
        scores = similarity(
            self.relative(query_embeddings, query_modality),
            self.relative(gallery_embeddings, other),
        )
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

    # -- editing the anchor set (exact backend only) --------------------------------------

    def exact_scan(self, operation: str = "this") -> ExactScan:
        """The model's exact backend, or UnsupportedOperationError naming `operation`."""
        if isinstance(self.scan, ExactScan):
            return self.scan
        hint = " (call compacted() first)" if isinstance(self.scan, TombstoneScan) else ""
        raise UnsupportedOperationError(
            f"{operation} needs the anchor embeddings in memory; this model's anchors are "
            f"searched through {type(self.scan).__name__}{hint}"
        )

    def compacted(self) -> AsifModel:
        """A model over an exact backend: tombstoned rows dropped (copies); else `self`."""
        if not isinstance(self.scan, TombstoneScan):
            return self
        live = self.scan.live_rows()
        return self.with_anchors(self.anchors.take(live), self.scan.compacted())

    def add_anchors(
        self,
        image_embeddings: np.ndarray,
        text_embeddings: np.ndarray,
        captions: Sequence[str],
        ids: Sequence[str] | None = None,
        urls: Sequence[str | None] | None = None,
    ) -> None:
        """Add anchor pairs in place; existing anchors are not touched or recomputed."""
        scan = self.exact_scan("add_anchors")
        new = AnchorSet.build(captions, image_embeddings, ids, urls)
        clash = set(new.ids) & set(self.anchors.ids)
        if clash:
            raise ValueError(f"anchor ids already present: {sorted(clash)[:5]}")
        image, text = normalize_rows(image_embeddings), normalize_rows(text_embeddings)
        if len(image) != len(new) or len(text) != len(new):
            raise ValueError(
                f"{len(new)} captions but {len(image)} image and {len(text)} text embeddings"
            )
        self.scan = scan.append(image, text)
        self.anchors = self.anchors.extend(new)

    def remove_anchors(self, ids: Sequence[str]) -> None:
        """Remove anchor pairs by id, in place."""
        scan = self.exact_scan("remove_anchors")
        keep = np.ones(len(self.anchors), dtype=bool)
        keep[self.anchors.rows(ids)] = False
        if not keep.any():
            raise EmptyInputError("removing these ids would leave the model with no anchors")
        self.anchors, self.scan = self.anchors.take(keep), scan.take(keep)

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
        scan = self.exact_scan("prune")
        classifier = self.zero_shot_classifier(class_names, templates, "max", prompt_embeddings)
        rel = classifier.text_relative
        keep = np.unique(rel.indices[rel.values > 0])
        return self.with_anchors(self.anchors.take(keep), scan.take(keep))

    def compress(self, precision: Precision) -> AsifModel:
        """The same model with anchor embeddings stored at `precision`."""
        return self.with_anchors(self.anchors, self.exact_scan("compress").compress(precision))

    def save(self, path: str | Path) -> Path:
        """Save anchors and settings (not the encoders) to the folder `path`, replacing what
        was there only once complete."""
        return write_folder(path, self.anchors, self.exact_scan("save"), self._settings)

    def __len__(self) -> int:
        """Anchors that take part in answers (tombstoned rows excluded)."""
        return self.scan.n_live

    def __repr__(self) -> str:
        s = self._settings
        return (
            f"AsifModel({len(self)} anchors, image={s.image_encoder!r}, "
            f"text={s.text_encoder!r}, k={s.k}, p={s.p}, backend={type(self.scan).__name__}, "
            f"precision={self.scan.precision})"
        )


def _no_encoder(kind: str, name: str) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"no {kind} encoder attached: load {name!r} and call attach_encoders(), "
        "or pass embeddings to the *_embeddings methods"
    )
