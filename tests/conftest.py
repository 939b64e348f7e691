"""Shared fixtures: fixed personas and the real-service switches.

The personas, the only users tests sign in as:

- alice owns conversations;
- bob is staff outside the reviewer group: he gets into the admin but sees no conversations;
- charlie is a stranger who must never see alice's data;
- rita reviews: staff, in the ``reviewer`` group that migration 0004 creates;
- sam is a superuser, who also manages users and reads the audit log.

``alice_client`` and ``rita_client`` are the test client signed in as them.
"""

import os

import pytest

pytest_plugins = ["tests.fake_api"]

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def pytest_report_header(config):
    from django.conf import settings

    return [
        f"database: {settings.DATABASES['default']['ENGINE']}",
        f"channel layer: {settings.CHANNEL_LAYERS['default']['BACKEND']}",
    ]


def pytest_collection_modifyitems(config, items):
    # Playwright's sync API keeps an event loop running in the main thread while the browser is open, so
    # browser tests go last: no asyncio test may start after them.
    items.sort(key=lambda item: "/e2e/" in str(item.fspath))


def pytest_sessionstart(session):
    # CI sets REQUIRE_SERVICES=1 with DATABASE_URL and REDIS_URL: a missing service must fail the run,
    # never quietly fall back to the embedded defaults.
    if not REQUIRE_SERVICES:
        return
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        pytest.exit("REQUIRE_SERVICES=1 needs DATABASE_URL and REDIS_URL", returncode=3)
    import redis

    try:
        redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.exit(f"REQUIRE_SERVICES=1 but Redis is unreachable: {exc}", returncode=3)


@pytest.fixture
def procs(tmp_path):
    """Real server processes started by a test (tests/servers.py), all stopped at its end."""
    from tests.servers import Processes

    group = Processes(tmp_path)
    yield group
    group.close()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Personas are created with passwords in almost every test; the real hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-password-1", is_staff=True)


@pytest.fixture
def charlie(django_user_model):
    return django_user_model.objects.create_user("charlie", password="charlie-password-1")


@pytest.fixture
def rita(django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("rita", password="rita-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name="reviewer"))
    return user


@pytest.fixture
def sam(django_user_model):
    return django_user_model.objects.create_superuser("sam", password="sam-password-1")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def rita_client(client, rita):
    client.force_login(rita)
    return client


@pytest.fixture
def sdk(stand_in):
    """The official openai client on the stand-in API (tests/fake_api.py), as Heroku's own users call it."""
    import openai

    return openai.OpenAI(base_url=stand_in.base_url + "/v1", api_key="demo", max_retries=0)


@pytest.fixture
def conversation(alice):
    from chat.models import Conversation

    return Conversation.objects.create(owner=alice)


@pytest.fixture
def api(_stand_in_server, settings):
    """A fresh stand-in API (tests/fake_api.py) as INFERENCE_URL, for the app's own tests: no pacing unless a
    test sets one, and no retries unless a test turns them on."""
    from chat.standin.api import FakeInference

    slot, server = _stand_in_server
    slot.app = FakeInference(key="test-key", delay=0.0)
    settings.INFERENCE_URL = server.base_url
    settings.INFERENCE_KEY = "test-key"
    settings.INFERENCE_DEMO = False
    settings.INFERENCE_MAX_RETRIES = 0
    return slot.app


@pytest.fixture(autouse=True)
def _no_automatic_titles(settings):
    """The model-written title is one more request and one more frame after a first reply; the tests of it
    (tests/test_titles.py, the browser tests) turn it on, the others count requests and frames without it."""
    settings.CHAT_AUTO_TITLES = False


@pytest.fixture(autouse=True)
def _own_upstream_budget(settings):
    """Each test its own shared budget window, so one test's requests never queue another's (Redis persists)."""
    import uuid

    settings.UPSTREAM_BUDGET_KEY = f"test:upstream:{uuid.uuid4().hex}"


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """The in-memory layer is a process-wide singleton holding queues bound to one event loop."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
async def socket(conversation, alice, api):
    """alice's socket on her conversation, past the ready frame."""
    from tests.sockets import close_hub, next_frame, open_socket, wait_for_turns

    comm, connected = await open_socket(conversation.public_id, alice)
    assert connected
    ready = await next_frame(comm)
    assert ready["type"] == "ready"
    yield comm
    await comm.disconnect()
    await wait_for_turns()
    await close_hub()
