"""Where an anchor table lives: database uri, table name and object-store options.

One value for the flows, the CLI, the service and the evaluation, so that each reads the
storage options from the environment the same way (`TableLocation.from_env`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from urllib.parse import urlsplit, urlunsplit

from asif.errors import SettingsError
from asif.store.table import AnchorTable

STORAGE_OPTIONS_ENV = "ASIF_STORAGE_OPTIONS"
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
    "AWS_DEFAULT_REGION": "aws_region",
    "AWS_REGION": "aws_region",
    "AWS_ENDPOINT_URL": "aws_endpoint",
    "AWS_ENDPOINT": "aws_endpoint",
}


def storage_options_from_env(env: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """LanceDB storage options from AWS_* variables, overridden by `ASIF_STORAGE_OPTIONS` JSON.

    A plain-http `AWS_ENDPOINT_URL` (MinIO, moto) also sets `allow_http`. None if nothing is set.
    """
    env = os.environ if env is None else env
    options = {key: env[var] for var, key in _AWS_ENV.items() if env.get(var)}
    if options.get("aws_endpoint", "").startswith("http://"):
        options["allow_http"] = "true"
    if env.get(STORAGE_OPTIONS_ENV):
        try:
            extra = json.loads(env[STORAGE_OPTIONS_ENV])
        except json.JSONDecodeError as e:
            raise SettingsError(f"{STORAGE_OPTIONS_ENV} is not valid JSON: {e}") from None
        if not isinstance(extra, dict):
            raise SettingsError(f"{STORAGE_OPTIONS_ENV} must be a JSON object, got {extra!r}")
        options.update({str(k): str(v) for k, v in extra.items()})
    return options or None


def public_uri(uri: str) -> str:
    """`uri` as an answer to a client may show it: an object-store uri without credentials or
    query, a local folder by its last name only (the server's paths stay in its log)."""
    parts = urlsplit(uri)
    if len(parts.scheme) > 1 and parts.scheme != "file":  # (a drive letter is no scheme)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return PurePath(parts.path if parts.scheme == "file" else uri).name


@dataclass(frozen=True)
class TableLocation:
    """An anchor table's database `uri` (a folder or ``s3://...``), `name` and storage options.

    The options hold credentials, so they are left out of the repr (and of logs that print it).
    """

    uri: str
    name: str = "anchors"
    storage_options: dict[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        options = dict(self.storage_options) if self.storage_options else None
        object.__setattr__(self, "storage_options", options)

    @classmethod
    def from_env(
        cls,
        uri: str,
        name: str = "anchors",
        storage_options: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> TableLocation:
        """The location with `storage_options`, or else those of the environment (`env`,
        default `os.environ`; see `storage_options_from_env`)."""
        options = dict(storage_options) if storage_options else storage_options_from_env(env)
        return cls(uri, name, options)

    def open(self, version: int | str | None = None) -> AnchorTable:
        """The table: the latest version (writable) or a version number or tag (read-only)."""
        return AnchorTable.open(self.uri, self.name, self.storage_options, version=version)

    def create_or_open(
        self, *, image_encoder: str, text_encoder: str, image_dim: int, text_dim: int
    ) -> AnchorTable:
        """Open the table, or create it empty; an existing one must have these encoders/dims."""
        return AnchorTable.create_or_open(
            self.uri,
            image_encoder=image_encoder,
            text_encoder=text_encoder,
            image_dim=image_dim,
            text_dim=text_dim,
            name=self.name,
            storage_options=self.storage_options,
        )
