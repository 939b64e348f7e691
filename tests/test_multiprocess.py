"""Two web processes on one Postgres and one Redis: a reply written by process A is followed live from a socket
on process B (snapshot, then every delta once, in order) and stopped from there.

Needs DATABASE_URL (Postgres) and REDIS_URL; with REQUIRE_SERVICES=1 their absence is a failure, not a skip.
"""

import asyncio

import pytest

from tests import servers

LONG = " ".join(f"word{i}" for i in range(400))


@pytest.fixture
def services():
    return servers.real_services("the multi-process test")


class Follower:
    """What a browser tab does with the frames of one reply: replace on `message`, append the next `delta`."""

    def __init__(self, reply_id):
        self.reply_id, self.content, self.seq, self.gaps, self.duplicates = reply_id, "", 0, [], 0

    def feed(self, frame):
        if frame["type"] == "message" and frame["message"]["id"] == self.reply_id:
            self.content, self.seq = frame["message"]["content"], frame["message"]["seq"]
        elif frame["type"] == "delta" and frame["id"] == self.reply_id:
            if frame["seq"] <= self.seq:
                self.duplicates += 1
            elif frame["seq"] != self.seq + 1:
                self.gaps.append((self.seq, frame["seq"]))
            else:
                self.content, self.seq = self.content + frame["text"], frame["seq"]


@pytest.mark.timeout(120)
def test_a_reply_is_followed_and_stopped_from_another_process(services, tmp_path, procs):
    env = servers.server_env(tmp_path, *services, CHAT_FLUSH_INTERVAL="0.3")
    api = procs.stand_in(env)
    setup = servers.shell(env, servers.SETUP)
    a, b = procs.web("a", env), procs.web("b", env)
    servers.script_reply(api, LONG)

    async def run():
        writer = await servers.connect(a.port, setup["conversation"], setup["cookie"])
        assert (await servers.receive(writer))["type"] == "ready"
        await writer.send(servers.send("Write a lot"))
        placeholder = (await servers.frames_until(
            writer, lambda f: f["type"] == "message" and f["message"]["role"] == "assistant"))[-1]["message"]
        await servers.frames_until(writer, lambda f: f["type"] == "delta" and f["seq"] >= 10)

        reader = await servers.connect(b.port, setup["conversation"], setup["cookie"])
        follower = Follower(placeholder["id"])
        live = await servers.frames_until(reader, lambda f: f["type"] == "delta")
        for frame in live:
            follower.feed(frame)
        for _ in range(5):
            follower.feed(await servers.receive(reader))
        await reader.send('{"type": "stop"}')
        rest = await servers.frames_until(reader, servers.is_final)
        for frame in rest[:-1]:
            follower.feed(frame)
        writer_final = (await servers.frames_until(writer, servers.is_final))[-1]["message"]
        await reader.close()
        await writer.close()
        return follower, live, rest[-1]["message"], writer_final

    follower, live, final, writer_final = asyncio.run(run())
    assert live[0]["type"] == "ready"
    snapshot = next(f["message"] for f in live if f["type"] == "message" and f["message"]["seq"] > 0)
    assert snapshot["status"] == "streaming" and snapshot["content"]
    assert follower.gaps == [] and follower.duplicates == 0
    assert final["status"] == "stopped" and writer_final["status"] == "stopped"
    assert follower.content == final["content"] == writer_final["content"]
    assert LONG.startswith(final["content"]) and len(final["content"]) < len(LONG)
    reply = servers.shell(env, servers.REPLIES)[-1]
    assert (reply["status"], reply["content"]) == ("stopped", final["content"])
