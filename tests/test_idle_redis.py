"""An idle socket on the Redis channel layer stays open: a quiet layer is not an error."""

import asyncio
import logging

import pytest

from tests.servers import real_services
from tests.sockets import next_frame

pytestmark = pytest.mark.django_db(transaction=True)


async def test_an_idle_socket_outlives_several_quiet_reads_of_the_layer(socket, settings, caplog):
    real_services("the idle Redis socket test")
    settings.CHAT_HEARTBEAT_INTERVAL = 60  # nothing at all crosses the layer or the socket meanwhile
    caplog.set_level(logging.WARNING, logger="chat.live.hub")

    # channels_redis blocks 5 s per read of an empty channel; redis-py's own default read timeout is 5 s too.
    await asyncio.sleep(12)

    await socket.send_json_to({"type": "ping"})
    assert await next_frame(socket) == {"type": "pong"}
    assert [record.getMessage() for record in caplog.records] == []
