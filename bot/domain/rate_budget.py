"""Slack's Web API rate limits as token buckets: pure arithmetic on a clock the caller passes in.

Slack limits each Web API method per app per workspace (docs.slack.dev "Rate limits"): Tier 3 methods such
as `chat.update` allow about 50 calls a minute, Tier 4 about 100; `chat.postMessage` allows about one
message a second per channel (short bursts tolerated) under a workspace-wide limit Slack does not number.
A bucket of `burst` tokens refilled at `per_minute` keeps any 60-second window at or under
`burst + per_minute`, which is what LIMITS below is sized for.

Two ways to spend a token:
- `take()` always succeeds and may leave the bucket in debt; it returns how long the caller must wait
  before sending. Messages that must go out (a build's final result, every ordinary call) use it, so they
  are queued in order and never dropped.
- `take_if_free()` only takes a whole token that is free now, never going into debt: progress updates use
  it, so they yield to everything that must go out and simply coalesce (the next one carries the latest
  content) while the budget is spent.
A 429 answer (`pause()`) stops the method for everyone until its Retry-After has passed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    per_minute: float
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0

    @property
    def window_max(self) -> float:
        """The most calls any 60-second window can see."""
        return self.burst + self.per_minute


TIER_3 = Limit(per_minute=45, burst=5)  # Slack: 50+ per minute
TIER_4 = Limit(per_minute=90, burst=10)  # Slack: 100+ per minute

# Workspace-wide limits per method (one bucket each, shared by every message and thread of the bot).
LIMITS: dict[str, Limit] = {
    "chat.update": TIER_3,
    # No published workspace number: kept at a Tier-4-like pace, far above what the bot posts.
    "chat.postMessage": TIER_4,
    "chat.postEphemeral": TIER_4,
    "views.publish": TIER_4,
}
# Per-channel limits on top of the workspace ones: about one message a second, a short burst allowed.
PER_CHANNEL: dict[str, Limit] = {
    "chat.postMessage": Limit(per_minute=60, burst=3),
}


class TokenBucket:
    """Not thread-safe: the caller holds a lock around every call."""

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.updated = now
        self.paused_until = now

    def _refill(self, now: float) -> None:
        begin = max(self.updated, self.paused_until)  # nothing accrues while paused
        if now > begin:
            self.tokens = min(float(self.limit.burst), self.tokens + (now - begin) * self.limit.per_second)
        self.updated = max(self.updated, now)

    def _paused_for(self, now: float) -> float:
        return max(0.0, self.paused_until - now)

    def free_now(self, now: float) -> bool:
        self._refill(now)
        return now >= self.paused_until and self.tokens >= 1.0

    def take(self, now: float) -> float:
        """Spend one token (going into debt if need be); returns the seconds to wait before the call."""
        self._refill(now)
        self.tokens -= 1.0
        debt = -self.tokens if self.tokens < 0 else 0.0
        return self._paused_for(now) + debt / self.limit.per_second

    def take_if_free(self, now: float) -> bool:
        if not self.free_now(now):
            return False
        self.tokens -= 1.0
        return True

    def until_free(self, now: float) -> float:
        """Seconds until `take_if_free` could succeed (0 when it can now)."""
        self._refill(now)
        missing = max(0.0, 1.0 - self.tokens)
        return self._paused_for(now) + missing / self.limit.per_second

    def pause(self, now: float, seconds: float) -> None:
        """Slack answered 429 with Retry-After: nothing goes out before then, and no burst right after."""
        self._refill(now)
        self.paused_until = max(self.paused_until, now + seconds)
        self.tokens = min(self.tokens, 0.0)
