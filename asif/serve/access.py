"""Who may call the service: an optional bearer token, CORS origins, and where it may bind.

Without a token the service answers anyone who reaches it, so `asif serve` binds beyond
loopback only with a token or when told explicitly (`check_bind`). Liveness (`/health`)
stays open so that an orchestrator can probe it.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from asif.errors import SettingsError

TOKEN_ENV = "ASIF_SERVE_TOKEN"
_bearer = HTTPBearer(auto_error=False, description=f"the token given to asif serve ({TOKEN_ENV})")


@dataclass(frozen=True)
class Access:
    """The bearer token every endpoint but liveness requires (None: open) and the origins
    browsers may call from (CORS)."""

    token: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.token is not None and not self.token.strip():
            raise SettingsError("the token is empty: give a secret or no token at all")


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the request carries the service's bearer token (when it has one)."""
    token: str | None = request.app.state.access.token
    if token is None:
        return
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


Authorized = Depends(require_token)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, access: Access, allow_unauthenticated: bool = False) -> None:
    """SettingsError if `host` reaches beyond this machine and nothing guards the service."""
    if access.token is None and not allow_unauthenticated and not is_loopback(host):
        raise SettingsError(
            f"refusing to serve on {host} without a token: pass --token (or set {TOKEN_ENV}),"
            " or --allow-unauthenticated to serve openly"
        )
