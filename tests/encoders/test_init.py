"""The package exports its public names, and importing the interfaces stays cheap."""

import subprocess
import sys

import asif.encoders as encoders


def test_public_names_resolve() -> None:
    for name in encoders.__all__:
        assert getattr(encoders, name) is not None
    assert encoders.load_image_encoder.__module__ == "asif.encoders.registry"


def test_interfaces_import_without_the_heavy_libraries() -> None:
    code = (
        "import sys; from asif.encoders import ImageEncoder, TextEncoder, ImageInput; "
        "heavy = {'torch', 'timm', 'sentence_transformers'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
