"""Stable anchor ids: a content hash of the pair, so re-runs find the rows they already wrote."""

import hashlib


def anchor_id(url: str, caption: str) -> str:
    """Return the 32-hex-digit id of the (url, caption) pair."""
    digest = hashlib.sha256(f"{url}\x1f{caption}".encode())
    return digest.hexdigest()[:32]
