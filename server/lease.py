"""A lease in Redis: one key that one process at a time holds (its random `origin` as value,
with a time to live it renews). Whatever only one process of a deployment may run (the rules
leader, the MQTT bridge) takes the lease, renews it every `RENEW_S` seconds while it works and
stops when a renewal fails; when the holder dies the key lapses and another process takes it."""

from __future__ import annotations

import uuid
from typing import Any

LEASE_MS = 10_000
RENEW_S = 2.0
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Lease:
    """The lease `key` on the asyncio Redis `client`, for `ms` milliseconds at a time."""

    def __init__(self, client: Any, key: str, ms: int = LEASE_MS) -> None:
        self.client, self.key, self.ms = client, key, ms
        self.origin = uuid.uuid4().hex[:12]
        self.held = False

    async def take(self) -> bool:
        """Take the lease when nobody holds it; True when this process holds it now."""
        self.held = bool(await self.client.set(self.key, self.origin, nx=True, px=self.ms))
        return self.held

    async def renew(self) -> bool:
        """Extend the lease; False (and no longer held) when it lapsed or another took it."""
        self.held = bool(await self.client.eval(_RENEW, 1, self.key, self.origin, self.ms))
        return self.held

    async def release(self) -> None:
        """Give the lease up at once (another process need not wait for it to lapse)."""
        if self.held:
            await self.client.eval(_RELEASE, 1, self.key, self.origin)
            self.held = False
