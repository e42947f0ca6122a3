"""What an authenticated principal may do: pure functions of its record and what a message claims.

A device may act only as itself: every ``device_id`` and ``cohort`` in its messages must be those of
its record, or the call is PERMISSION_DENIED. An operator may read any cohort's policy with the
``policy:read`` scope (roles read-only and policy-admin) and may neither escalate nor upload. The
operator surface (``PolicyAdminService``) is for operators only: reads need ``policy:read``, changes
``policy:write`` (role policy-admin). Bundles (``BundleService``) are read as policies are: a device reads
its own cohort's current release and files, as itself; an operator with ``policy:read`` any cohort's.
"""

from __future__ import annotations

from cloud_service.identity.record import POLICY_READ, WATCH, Principal
from confroute.errors import PermissionDenied


def require_scope(principal: Principal | None, scope: str) -> None:
    """PermissionDenied unless the principal holds ``scope`` (None: authentication is off)."""
    if principal is not None and not principal.allows(scope):
        raise PermissionDenied(f"{principal.kind} {principal.principal_id} may not {scope}")


def require_self(principal: Principal | None, device_id: str, cohort: str | None, scope: str) -> None:
    """A device acting as itself, in its own cohort (``cohort`` None: not claimed by this message)."""
    if principal is None:
        return
    require_scope(principal, scope)
    if not principal.is_device:
        raise PermissionDenied(f"operator {principal.principal_id} may not {scope} as a device")
    if device_id != principal.principal_id:
        raise PermissionDenied(f"device {principal.principal_id} may not {scope} as device {device_id!r}")
    if cohort is not None and cohort != principal.cohort:
        raise PermissionDenied(f"device {principal.principal_id} is in cohort {principal.cohort!r}, not {cohort!r}")


def require_policy_read(principal: Principal | None, device_id: str, cohort: str) -> None:
    """A device watches its own cohort as itself; an operator with ``policy:read`` reads any cohort."""
    if principal is not None and not principal.is_device:
        require_scope(principal, POLICY_READ)
        return
    require_self(principal, device_id, cohort, WATCH)


def require_bundle_read(principal: Principal | None, device_id: str, cohort: str) -> None:
    """The release and files of ``cohort``'s bundle: read as its policy is (:func:`require_policy_read`)."""
    require_policy_read(principal, device_id, cohort)


def require_operator(principal: Principal | None, scope: str) -> Principal:
    """An operator holding ``scope``; devices, and every caller of a service that authenticates nobody, are
    refused (the operator surface changes what the whole fleet runs)."""
    if principal is None:
        raise PermissionDenied("operator commands need a service that authenticates its callers (docs/identity.md)")
    if principal.is_device:
        raise PermissionDenied(f"device {principal.principal_id} may not use the operator surface")
    require_scope(principal, scope)
    return principal
