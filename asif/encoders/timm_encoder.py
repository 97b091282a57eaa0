"""Any timm image model as a frozen encoder of its pooled features (`num_classes=0`)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import create_transform, resolve_model_data_config

from asif.encoders.common import EXACT, EncoderSettings, TorchImageEncoder
from asif.errors import EncoderError


class TimmImageEncoder(TorchImageEncoder):
    """A timm model's pooled pre-classifier features.

    Weights come from `weights` (a local state dict: .pth, .pt, .bin or .safetensors) when given,
    else from the Hugging Face hub when `pretrained` (needs network or a warm cache), else random
    initialisation. Preprocessing is the model's own timm data config. `settings`: how it runs
    (`EncoderSettings`; under bfloat16 nothing is kept in float32, as EfficientNet-Lite's stem
    is: check the cosine to float32 for a new model).
    """

    def __init__(
        self,
        model_name: str,
        weights: str | Path | None = None,
        pretrained: bool = True,
        device: str | None = None,
        settings: EncoderSettings = EXACT,
    ) -> None:
        if ":" not in model_name and not timm.is_model(model_name):  # "hf-hub:..." skips this
            close = difflib.get_close_matches(model_name, timm.list_models(), n=5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise EncoderError(f"unknown timm model {model_name!r}{hint}")

        if weights is not None:
            model = timm.create_model(model_name, pretrained=False, num_classes=0)
            _load_local_weights(model, Path(weights), model_name)
            self.name = f"timm:{model_name}@{Path(weights).name}"
        elif pretrained:
            model = _create_from_hub(model_name)
            self.name = f"timm:{model_name}"
        else:
            model = timm.create_model(model_name, pretrained=False, num_classes=0)
            self.name = f"timm:{model_name}@random-init"

        self.model_name = model_name
        self.dim: int = model.num_features  # type: ignore[assignment]  # timm types it as Tensor | Module
        self._place(model, device, settings)
        self.transform = create_transform(**resolve_model_data_config(model), is_training=False)

    def features(self, batch: torch.Tensor) -> torch.Tensor:
        """Pooled (n, num_features) features (the model's head has no classifier)."""
        return self.model(batch)


def _create_from_hub(model_name: str) -> torch.nn.Module:
    try:
        return timm.create_model(model_name, pretrained=True, num_classes=0)
    except Exception as exc:  # hub/network errors come in many types
        raise RuntimeError(
            f"could not get pretrained weights for timm model {model_name!r} from the hub "
            f"(offline?); pass a local weights file instead: TimmImageEncoder({model_name!r}, "
            f"weights=PATH) or the spec 'timm:{model_name}@PATH' "
            f"(cause: {type(exc).__name__}: {exc})"
        ) from exc


def _load_local_weights(model: torch.nn.Module, path: Path, model_name: str) -> None:
    """Load a state dict file into `model`, ignoring only classifier weights; any other
    missing or unexpected key is an error (so weights never load silently half-way)."""
    if not path.is_file():
        raise FileNotFoundError(f"weights file for timm model {model_name!r} not found: {path}")
    try:
        state = timm.models.load_state_dict(str(path))
    except Exception as exc:  # torch/safetensors raise varied types on bad files
        raise EncoderError(f"cannot read weights file {path}: {type(exc).__name__}: {exc}") from exc

    cfg: dict[str, Any] = model.pretrained_cfg  # type: ignore[assignment]  # a dict at run time
    classifiers = cfg.get("classifier") or ()
    if isinstance(classifiers, str):
        classifiers = (classifiers,)
    heads = tuple(f"{c}." for c in classifiers)
    state = {k: v for k, v in state.items() if not k.startswith(heads)}

    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise EncoderError(
            f"weights file {path} does not fit timm model {model_name!r}: {exc}"
        ) from exc
    if result.missing_keys or result.unexpected_keys:
        raise EncoderError(
            f"weights file {path} does not fit timm model {model_name!r}: "
            f"{len(result.missing_keys)} missing keys {result.missing_keys[:5]}, "
            f"{len(result.unexpected_keys)} unexpected keys {result.unexpected_keys[:5]}"
        )
