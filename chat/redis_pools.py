"""Redis connections with a ceiling per process.

redis-py's asyncio pool opens one more connection whenever every open one is busy, so a burst (hundreds of
sockets connecting at once after a restart, each joining its conversation's group) opened about a hundred Redis
connections from one process in bench/concurrency.py. Heroku Key-Value Store plans cap clients (20 on mini),
and every process of every dyno counts. These pools hold at most a few connections and make a command wait for a
free one instead: Redis answers in well under a millisecond, so a short queue costs little.
"""

import redis.asyncio as redis
from channels_redis.core import RedisChannelLayer
from django.conf import settings

WAIT_FOR_CONNECTION = 10  # seconds a command waits for a free connection before it fails


def bounded_pool(url, max_connections, **options):
    return redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=WAIT_FOR_CONNECTION, **options
    )


class ChannelLayer(RedisChannelLayer):
    """channels_redis's core layer on at most ``REDIS_MAX_CONNECTIONS`` connections per process (one of them
    is taken by the hub's blocking read of its channel)."""

    def create_pool(self, index):
        host = dict(self.hosts[index])
        return bounded_pool(host.pop("address"), settings.REDIS_MAX_CONNECTIONS, **host)
