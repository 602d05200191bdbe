"""API keys (admin only): create (the token is shown once), list, rotate, revoke.

Revoking or rotating a key ends its browser sessions at once, and clears the
key cache of this process (other processes notice within seconds).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from gridmap.api.deps import AdminDep, KeyId, StoreDep
from gridmap.api.errors import PROBLEM_RESPONSES
from gridmap.api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeysPublic
from gridmap.db.keys import create_key, list_keys, revoke_key, rotate_key

__all__ = ["router"]

router = APIRouter(prefix="/keys", tags=["keys"], responses=PROBLEM_RESPONSES)


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (admin); the token is in this answer only",
)
def create(body: ApiKeyCreate, store: StoreDep, admin: AdminDep) -> ApiKeyCreated:
    """Create a key with a role (and an expiry); store the ``token``, it is never shown again."""
    rec, token = create_key(
        store,
        name=body.name,
        role=body.role,
        author=admin.actor,
        scope=body.scope,
        expires_at=body.expires_at,
    )
    return ApiKeyCreated(**rec.to_dict(), token=token)


@router.get("", response_model=ApiKeysPublic, summary="List API keys (admin)")
def list_route(
    store: StoreDep,
    _admin: AdminDep,
    include_revoked: Annotated[bool, Query(description="also list revoked keys")] = True,
) -> ApiKeysPublic:
    """List every key: id, prefix, name, role, created, expiry, last use, revoked (no token)."""
    recs = list_keys(store, include_revoked=include_revoked)
    return ApiKeysPublic(data=[ApiKeyPublic(**r.to_dict()) for r in recs], count=len(recs))


@router.post(
    "/{key_id}/rotate",
    response_model=ApiKeyCreated,
    summary="Give a key a new secret (admin); the old one and its sessions end",
    responses={409: {"description": "The key is revoked; create a new one"}},
)
def rotate(key_id: KeyId, request: Request, store: StoreDep, admin: AdminDep) -> ApiKeyCreated:
    """Keep the id, name, role, scope and expiry; answer the new token (shown this once)."""
    rec, token = rotate_key(store, key_id, author=admin.actor)
    request.app.state.key_cache.clear()
    return ApiKeyCreated(**rec.to_dict(), token=token)


@router.delete("/{key_id}", response_model=ApiKeyPublic, summary="Revoke an API key (admin)")
def revoke(key_id: KeyId, request: Request, store: StoreDep, admin: AdminDep) -> ApiKeyPublic:
    """Revoke a key at once (idempotent), ending its sessions; the record stays for the audit."""
    rec = revoke_key(store, key_id, author=admin.actor)
    request.app.state.key_cache.clear()
    return ApiKeyPublic(**rec.to_dict())
