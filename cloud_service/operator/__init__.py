"""The operators' policy commands, run on the policy store directly or through the service.

- :mod:`.admin`: :class:`~.admin.PolicyAdmin`, what an operator can do to a key's rollout, and
  :class:`~.admin.StoreAdmin`, its implementation on the policy store (the service's, or the CLI's direct
  Redis path for bootstrap).
- :mod:`.wire`: the rollout, its history and the requests to and from ``confroute.v1.operator`` messages.
- :mod:`.client`: :class:`~.client.RemoteAdmin`, the same commands through ``PolicyAdminService`` with an
  operator credential, and the CLI's ``--service`` flags.

The servicer that authorises each call by the operator's role is
:mod:`cloud_service.server.operator`.
"""
