"""Fleet identity: who a caller is, decided by the service from an issued credential, never from a message.

- :mod:`.keys`: the Redis key names of identity records, token hashes, revocations and rate buckets.
- :mod:`.record`: a principal's record (device or operator): id, cohort, created, expires, scopes.
- :mod:`.tokens`: random 256-bit bearer tokens, stored only as keyed hashes (HMAC-SHA256, server secret).
- :mod:`.ca`: the fleet CA (``cloud-service ca init``) and device certificates with the id in the SAN.
- :mod:`.registry`: the records in Redis: enrol, list, revoke, rotate, look up by token or certificate.
- :mod:`.authenticator`: the server side: credential of a call -> :class:`.context.Caller`, cached briefly,
  following the revocation feed; :mod:`.context` hands the caller to the servicers.
- :mod:`.access`: what a caller may do (pure functions: scopes, acting as itself, its own cohort, the
  operator surface).
- :mod:`.rate`: a per-device token bucket in Redis (one Lua call).
- :mod:`.flood`: a per-address budget of invalid credentials, spent before any hashing.
- :mod:`.service`: wiring into the running service; :mod:`.command`: ``cloud-service ca`` and ``devices``.
"""
