"""The shared upstream budget: requests and tokens per sliding minute, across every process.

Heroku's add-on allows 150 requests and 800,000 tokens a minute per model (HEROKU_INFERENCE.md). Each request
reserves one request and its estimated tokens before it is sent, waiting while the window is full, and settles
the reservation with the reported usage afterwards. With REDIS_URL the window lives in Redis (one Lua script,
atomic across processes and dynos); without it, in this process.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass

from django.conf import settings

WINDOW = 60.0
MAX_CONNECTIONS = 2  # to Redis, per process: a reservation is one short script
# Rough but safe: Claude's tokenizer averages a little under 4 characters per token for English.
CHARS_PER_TOKEN = 3.5
IMAGE_TOKENS = 1600  # a 1.15 MP image costs about this many input tokens


def estimate_tokens(messages, max_tokens):
    """Tokens a request may cost: its prompt, estimated from its text and images, plus the reply's ceiling."""
    chars, images = 0, 0
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, str):
            chars += len(content)
            continue
        for part in content:
            if part.get("type") == "image_url":
                images += 1
            else:
                chars += len(part.get("text", ""))
    return int(chars / CHARS_PER_TOKEN) + images * IMAGE_TOKENS + (max_tokens or 0)


@dataclass
class Reservation:
    key: str
    tokens: int
    at: float


class LocalWindow:
    """The budget of one process, for the embedded defaults."""

    def __init__(self, window=WINDOW):
        self.window = window
        self.entries = {}  # key -> (timestamp, tokens)

    async def try_reserve(self, key, tokens, now, max_requests, max_tokens):
        self.entries = {k: v for k, v in self.entries.items() if v[0] > now - self.window}
        used_tokens = sum(t for _, t in self.entries.values())
        if len(self.entries) < max_requests and used_tokens + tokens <= max_tokens:
            self.entries[key] = (now, tokens)
            return 0.0
        return _wait(sorted(self.entries.values()), tokens, now, max_requests, max_tokens, self.window)

    async def settle(self, key, tokens):
        if key in self.entries:
            self.entries[key] = (self.entries[key][0], tokens)


def _wait(entries, tokens, now, max_requests, max_tokens, window):
    """Seconds until enough old entries leave the window for one more request of ``tokens``."""
    wait = 0.0
    if len(entries) >= max_requests:
        wait = entries[len(entries) - max_requests][0] + window - now
    used = sum(t for _, t in entries)
    for at, spent in entries:
        if used + tokens <= max_tokens:
            break
        used -= spent
        wait = max(wait, at + window - now)
    return max(wait, 0.05)


# KEYS[1]: the window's sorted set (member "id:tokens", score = time). ARGV: id, tokens, (unused), max requests,
# max tokens, window. Time is Redis's own, so dynos with skewed clocks agree. Returns 0 when reserved, else
# milliseconds to wait.
_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ARGV[6])
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local count, used = #entries / 2, 0
for i = 1, #entries, 2 do used = used + tonumber(string.match(entries[i], ':(%d+)$')) end
local tokens = tonumber(ARGV[2])
if count < tonumber(ARGV[4]) and used + tokens <= tonumber(ARGV[5]) then
  redis.call('ZADD', KEYS[1], now, ARGV[1] .. ':' .. ARGV[2])
  redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[6]) + 1)
  return 0
end
local wait = 0
if count >= tonumber(ARGV[4]) then
  wait = tonumber(entries[(count - tonumber(ARGV[4])) * 2 + 2]) + ARGV[6] - now
end
for i = 1, #entries, 2 do
  if used + tokens <= tonumber(ARGV[5]) then break end
  used = used - tonumber(string.match(entries[i], ':(%d+)$'))
  wait = math.max(wait, tonumber(entries[i + 1]) + ARGV[6] - now)
end
return math.max(math.ceil(wait * 1000), 50)
"""

# Replace a reservation's estimate with the reported usage, keeping its place in the window.
_SETTLE = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  if string.sub(members[i], 1, #ARGV[1] + 1) == ARGV[1] .. ':' then
    redis.call('ZREM', KEYS[1], members[i])
    redis.call('ZADD', KEYS[1], members[i + 1], ARGV[1] .. ':' .. ARGV[2])
    return 1
  end
end
return 0
"""


class RedisWindow:
    """The budget shared by every process and dyno, in one Redis sorted set."""

    def __init__(self, url, name, window=WINDOW):
        import redis.asyncio as redis

        from chat.redis_pools import bounded_pool

        self.window = window
        options = {"ssl_cert_reqs": None} if url.startswith("rediss://") else {}
        # A burst of turns waits for two connections rather than opening one each (chat/redis_pools.py).
        self.redis = redis.Redis(connection_pool=bounded_pool(url, MAX_CONNECTIONS, **options))
        self.name = name
        self.reserve_script = self.redis.register_script(_RESERVE)
        self.settle_script = self.redis.register_script(_SETTLE)

    async def try_reserve(self, key, tokens, now, max_requests, max_tokens):
        waited = await self.reserve_script(keys=[self.name], args=[key, tokens, 0, max_requests, max_tokens, self.window])
        return int(waited) / 1000

    async def settle(self, key, tokens):
        await self.settle_script(keys=[self.name], args=[key, max(int(tokens), 0)])


class UpstreamBudget:
    def __init__(self, window, max_requests, max_tokens, clock=time.time):
        self.window, self.max_requests, self.max_tokens, self.clock = window, max_requests, max_tokens, clock

    async def acquire(self, tokens, on_wait=None):
        """Reserve one request and ``tokens``; waits while the minute is full, telling ``on_wait(seconds)``."""
        tokens = min(int(tokens), self.max_tokens)
        key = uuid.uuid4().hex
        while True:
            now = self.clock()
            wait = await self.window.try_reserve(key, tokens, now, self.max_requests, self.max_tokens)
            if wait <= 0:
                return Reservation(key, tokens, now)
            if on_wait is not None:
                await on_wait(wait)
            await asyncio.sleep(wait)

    async def settle(self, reservation, tokens):
        """Correct a reservation with the tokens the API reported."""
        await self.window.settle(reservation.key, tokens)


_budgets = {}


def get_budget():
    """The budget for this event loop (Redis clients are bound to the loop that made them)."""
    loop = asyncio.get_running_loop()
    budget = _budgets.get(loop)
    if budget is None:
        seconds = settings.UPSTREAM_WINDOW_SECONDS
        if settings.REDIS_URL:
            name = f"{settings.UPSTREAM_BUDGET_KEY}:{settings.INFERENCE_MODEL_ID}"
            window = RedisWindow(settings.REDIS_URL, name, seconds)
        else:
            window = LocalWindow(seconds)
        budget = UpstreamBudget(window, settings.UPSTREAM_REQUESTS_PER_MINUTE, settings.UPSTREAM_TOKENS_PER_MINUTE)
        _budgets.clear()  # an old loop's budget is of no further use
        _budgets[loop] = budget
    return budget
