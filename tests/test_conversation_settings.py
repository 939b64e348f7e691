"""Per-conversation settings: the owner reads and changes them, bad values are refused with a message and change
nothing, nobody else can see or touch them, and what is stored is what the API receives."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from chat.turns import options
from chat.standin.api import Reply
from chat.models import Conversation
from tests.sockets import frames_until, is_final

pytestmark = pytest.mark.django_db

# What the dialog posts when nothing is changed on a new conversation (unchecked boxes are simply absent).
UNCHANGED = {"system_prompt": "", "model_id": "", "temperature": "", "max_tokens": "", "thinking_budget": "",
             "prompt_caching": "1", "tools_enabled": "1"}
THINKING_DEFAULT_ERROR = (
    "Thinking uses a budget of 2,048 tokens by default: raise max tokens above that, or set a smaller thinking budget."
)


@pytest.fixture(autouse=True)
def operator_defaults(settings):
    settings.INFERENCE_MODEL_ID = "claude-4-5-sonnet"
    settings.CHAT_MODELS = ["claude-4-5-sonnet", "claude-4-5-haiku"]
    settings.INFERENCE_MAX_TOKENS = 4096
    settings.CHAT_SYSTEM_PROMPT = "The site's default prompt."
    settings.CHAT_DEFAULT_TEMPERATURE = None
    settings.CHAT_THINKING_BUDGET = 2048


def url(conv):
    return reverse("chat:settings", args=[conv.public_id])


def save(client, conv, **changes):
    return client.post(url(conv), {**UNCHANGED, **changes})


def errors(response):
    assert response.status_code == 400, response.content
    return response.json()["errors"]


def stored(conv):
    conv.refresh_from_db()
    return options.current(conv)


# --- reading and saving ------------------------------------------------------------------------------------


def test_get_shows_values_defaults_models_and_limits(alice_client, conversation):
    Conversation.objects.filter(pk=conversation.pk).update(temperature=0.3, thinking=True)
    response = alice_client.get(url(conversation))
    assert response.status_code == 200
    assert response.json() == {
        "settings": {"system_prompt": "", "model_id": "", "temperature": 0.3, "max_tokens": None,
                     "prompt_caching": True, "tools_enabled": True, "thinking": True, "thinking_budget": None},
        "defaults": {"system_prompt": "The site's default prompt.", "model_id": "claude-4-5-sonnet",
                     "temperature": None, "max_tokens": 4096, "thinking_budget": 2048},
        "models": ["claude-4-5-sonnet", "claude-4-5-haiku"],
        "limits": {"system_prompt_chars": 20000, "max_tokens": 64000, "thinking_budget_min": 1024},
    }


def test_post_saves_every_setting(alice_client, conversation):
    response = save(alice_client, conversation, system_prompt="  Answer like a pirate.  ", model_id="claude-4-5-haiku",
                    temperature="", max_tokens="8000", thinking="1", thinking_budget="3000", prompt_caching="")
    expected = {"system_prompt": "Answer like a pirate.", "model_id": "claude-4-5-haiku", "temperature": None,
                "max_tokens": 8000, "prompt_caching": False, "tools_enabled": True, "thinking": True,
                "thinking_budget": 3000}
    assert response.status_code == 200
    assert response.json() == {"ok": True, "settings": expected}
    assert stored(conversation) == expected


def test_blank_fields_go_back_to_the_defaults(alice_client, conversation):
    Conversation.objects.filter(pk=conversation.pk).update(
        system_prompt="Old", model_id="claude-4-5-haiku", temperature=0.1, max_tokens=100, thinking_budget=2000
    )
    assert save(alice_client, conversation, system_prompt="   ").status_code == 200
    values = stored(conversation)
    assert (values["system_prompt"], values["model_id"], values["temperature"]) == ("", "", None)
    assert (values["max_tokens"], values["thinking_budget"]) == (None, None)


def test_an_unticked_box_is_off(alice_client, conversation):
    response = alice_client.post(url(conversation), {"temperature": "0.5"})
    assert response.status_code == 200
    values = stored(conversation)
    assert (values["prompt_caching"], values["tools_enabled"], values["thinking"]) == (False, False, False)


def test_saving_does_not_move_the_conversation_in_the_sidebar(alice_client, conversation):
    before = Conversation.objects.get(pk=conversation.pk).updated_at
    save(alice_client, conversation, temperature="0.7")
    assert Conversation.objects.get(pk=conversation.pk).updated_at == before


# --- validation: each field at and beyond its bounds -------------------------------------------------------


@pytest.mark.parametrize("value, expected", [("0", 0.0), ("1", 1.0), ("0.5", 0.5), ("", None)])
def test_temperature_from_0_to_1(alice_client, conversation, value, expected):
    assert save(alice_client, conversation, temperature=value).status_code == 200
    assert stored(conversation)["temperature"] == expected


@pytest.mark.parametrize("value", ["-0.01", "1.01", "2", "warm", "nan", "inf"])
def test_temperature_outside_0_to_1_is_refused(alice_client, conversation, value):
    assert errors(save(alice_client, conversation, temperature=value)) == {
        "temperature": ["Temperature must be a number from 0 to 1."]
    }


@pytest.mark.parametrize("value, expected", [("1", 1), ("64000", 64000), ("", None)])
def test_max_tokens_from_1_to_64000(alice_client, conversation, value, expected):
    assert save(alice_client, conversation, max_tokens=value).status_code == 200
    assert stored(conversation)["max_tokens"] == expected


@pytest.mark.parametrize("value", ["0", "-5", "64001", "1.5", "many"])
def test_max_tokens_outside_the_range_is_refused(alice_client, conversation, value):
    assert errors(save(alice_client, conversation, max_tokens=value)) == {
        "max_tokens": ["Max tokens must be a whole number from 1 to 64,000."]
    }


@pytest.mark.parametrize("model", ["", "claude-4-5-sonnet", "claude-4-5-haiku"])
def test_a_listed_model_or_the_default(alice_client, conversation, model):
    assert save(alice_client, conversation, model_id=model).status_code == 200
    assert stored(conversation)["model_id"] == model


@pytest.mark.parametrize("model", ["claude-3-7-sonnet", "gpt-4o", "CLAUDE-4-5-HAIKU"])
def test_a_model_the_site_does_not_offer_is_refused(alice_client, conversation, model):
    assert errors(save(alice_client, conversation, model_id=model)) == {
        "model_id": ["Choose one of the models this site offers."]
    }


def test_system_prompt_up_to_20000_characters(alice_client, conversation):
    assert save(alice_client, conversation, system_prompt="x" * 20000).status_code == 200
    assert len(stored(conversation)["system_prompt"]) == 20000
    assert errors(save(alice_client, conversation, system_prompt="y" * 20001)) == {
        "system_prompt": ["The system prompt may have at most 20,000 characters (it has 20001)."]
    }
    assert stored(conversation)["system_prompt"] == "x" * 20000


@pytest.mark.parametrize("budget", ["1024", "4095"])
def test_thinking_budget_from_1024_to_below_max_tokens(alice_client, conversation, budget):
    assert save(alice_client, conversation, thinking="1", thinking_budget=budget).status_code == 200
    assert stored(conversation)["thinking_budget"] == int(budget)


@pytest.mark.parametrize("budget", ["1023", "0", "64000", "lots"])
def test_thinking_budget_out_of_range_is_refused(alice_client, conversation, budget):
    assert errors(save(alice_client, conversation, thinking="1", thinking_budget=budget)) == {
        "thinking_budget": ["The thinking budget must be a whole number from 1,024 to 63,999."]
    }


@pytest.mark.parametrize("max_tokens, budget", [("", "4096"), ("3000", "3000"), ("3000", "5000")])
def test_thinking_budget_must_be_below_max_tokens(alice_client, conversation, max_tokens, budget):
    limit = f"{int(max_tokens or 4096):,}"
    response = save(alice_client, conversation, thinking="1", max_tokens=max_tokens, thinking_budget=budget)
    message = f"The thinking budget must be less than max tokens ({limit}): lower it or raise max tokens."
    assert errors(response) == {"thinking_budget": [message]}


def test_the_default_budget_must_fit_too(alice_client, conversation):
    assert errors(save(alice_client, conversation, thinking="1", max_tokens="2048")) == {
        "max_tokens": [THINKING_DEFAULT_ERROR]
    }
    assert save(alice_client, conversation, thinking="1", max_tokens="2049").status_code == 200


def test_the_default_budget_against_the_default_max_tokens(alice_client, conversation, settings):
    settings.INFERENCE_MAX_TOKENS = 2000
    assert errors(save(alice_client, conversation, thinking="1")) == {"max_tokens": [THINKING_DEFAULT_ERROR]}


def test_a_temperature_is_refused_while_thinking_is_on(alice_client, conversation):
    assert errors(save(alice_client, conversation, thinking="1", temperature="0.5")) == {
        "temperature": ["Extended thinking uses the model's default temperature: leave this blank."]
    }
    assert stored(conversation)["thinking"] is False
    assert save(alice_client, conversation, thinking="1", temperature="").status_code == 200


def test_a_budget_is_only_checked_against_max_tokens_while_thinking_is_on(alice_client, conversation):
    assert save(alice_client, conversation, max_tokens="2000", thinking_budget="3000").status_code == 200


def test_an_invalid_post_changes_nothing(alice_client, conversation):
    save(alice_client, conversation, system_prompt="Keep me", temperature="0.2")
    before = stored(conversation)
    response = save(alice_client, conversation, system_prompt="Changed", model_id="claude-4-5-haiku",
                    temperature="1.5", max_tokens="0")
    assert set(errors(response)) == {"temperature", "max_tokens"}
    assert stored(conversation) == before


# --- who may read and change them --------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["bob", "charlie"])
def test_another_user_gets_a_404(client, conversation, persona, request):
    client.force_login(request.getfixturevalue(persona))
    before = stored(conversation)
    assert client.get(url(conversation)).status_code == 404
    assert save(client, conversation, temperature="0.9").status_code == 404
    assert stored(conversation) == before


def test_an_unknown_conversation_is_a_404(alice_client):
    response = alice_client.get(reverse("chat:settings", args=[uuid.uuid4()]))
    assert response.status_code == 404


def test_logged_out_is_sent_to_log_in(client, conversation):
    before = stored(conversation)
    for response in (client.get(url(conversation)), save(client, conversation, temperature="0.9")):
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert stored(conversation) == before


def test_a_post_needs_the_csrf_token(alice, conversation):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert save(client, conversation, temperature="0.9").status_code == 403
    assert stored(conversation)["temperature"] is None

    client.get(conversation.get_absolute_url())
    token = client.cookies["csrftoken"].value
    response = client.post(url(conversation), {**UNCHANGED, "temperature": "0.9"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert stored(conversation)["temperature"] == 0.9


def test_other_methods_are_refused(alice_client, conversation):
    assert alice_client.put(url(conversation)).status_code == 405


def test_the_page_has_the_button_and_dialog_only_for_a_conversation(alice_client, conversation):
    page = alice_client.get(conversation.get_absolute_url()).content.decode()
    assert 'id="settings-button"' in page and 'id="settings-dialog"' in page and url(conversation) in page
    assert 'id="settings-dialog"' not in alice_client.get(reverse("chat:index")).content.decode()


# --- what the API is sent ----------------------------------------------------------------------------------


def test_request_options_fall_back_to_the_operators_defaults(conversation, settings):
    settings.CHAT_DEFAULT_TEMPERATURE = 0.6
    assert options.request_options(conversation) == {
        "model": "claude-4-5-sonnet", "max_tokens": 4096, "temperature": 0.6, "prompt_caching": True,
        "extended_thinking": None,
    }
    assert options.system_prompt(conversation) == "The site's default prompt."


def test_request_options_of_a_configured_conversation(conversation):
    conversation.system_prompt = "Be brief."
    conversation.model_id = "claude-4-5-haiku"
    conversation.temperature = 0.0
    conversation.max_tokens = 5000
    conversation.prompt_caching = False
    assert options.request_options(conversation) == {
        "model": "claude-4-5-haiku", "max_tokens": 5000, "temperature": 0.0, "prompt_caching": False,
        "extended_thinking": None,
    }
    conversation.thinking = True
    # With thinking on, the temperature is left out: Claude accepts only its default then.
    assert options.request_options(conversation) == {
        "model": "claude-4-5-haiku", "max_tokens": 5000, "temperature": None, "prompt_caching": False,
        "extended_thinking": {"enabled": True, "budget_tokens": 2048, "include_reasoning": True},
    }
    assert options.system_prompt(conversation) == "Be brief."


def test_a_withdrawn_model_falls_back_to_the_default(conversation, settings):
    conversation.model_id = "claude-4-5-haiku"
    settings.CHAT_MODELS = ["claude-4-5-sonnet"]
    assert options.request_options(conversation)["model"] == "claude-4-5-sonnet"
    assert options.current(conversation)["model_id"] == ""


@pytest.mark.django_db(transaction=True)
async def test_stored_settings_reach_the_api(socket, conversation, api):
    await Conversation.objects.filter(pk=conversation.pk).aupdate(
        system_prompt="Answer in French.", model_id="claude-4-5-haiku", temperature=None, max_tokens=3000,
        prompt_caching=False, tools_enabled=False, thinking=True, thinking_budget=1500,
    )
    api.enqueue(Reply(text="Bonjour.", reasoning="The user wants French."))
    await socket.send_json_to({"type": "send", "text": "Hello", "client_id": str(uuid.uuid4())})
    final = (await frames_until(socket, is_final))[-1]["message"]
    assert final["status"] == "complete", final

    sent = api.requests[-1]
    body = sent["body"]
    assert body["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert (body["model"], body["max_tokens"]) == ("claude-4-5-haiku", 3000) and "temperature" not in body
    assert body["extended_thinking"] == {"enabled": True, "budget_tokens": 1500, "include_reasoning": True}
    assert "tools" not in body
    assert sent["headers"]["x-heroku-prompt-caching"] == "false"


@pytest.mark.django_db(transaction=True)
async def test_default_settings_send_no_opt_outs(socket, conversation, api):
    api.enqueue(Reply(text="Hi."))
    await socket.send_json_to({"type": "send", "text": "Hello", "client_id": str(uuid.uuid4())})
    await frames_until(socket, is_final)

    sent = api.requests[-1]
    assert sent["body"]["messages"][0] == {"role": "system", "content": "The site's default prompt."}
    assert sent["body"]["model"] == "claude-4-5-sonnet" and sent["body"]["max_tokens"] == 4096
    assert "temperature" not in sent["body"] and "extended_thinking" not in sent["body"]
    assert "x-heroku-prompt-caching" not in sent["headers"]


@pytest.mark.django_db(transaction=True)
async def test_the_temperature_reaches_the_api_and_the_reply_records_its_model(socket, conversation, api):
    await Conversation.objects.filter(pk=conversation.pk).aupdate(model_id="claude-4-5-haiku", temperature=0.2)
    api.enqueue(Reply(text="Hi."))
    await socket.send_json_to({"type": "send", "text": "Hello", "client_id": str(uuid.uuid4())})
    final = (await frames_until(socket, is_final))[-1]["message"]

    assert api.requests[-1]["body"]["temperature"] == 0.2
    assert final["model"] == "claude-4-5-haiku"
    assert (await conversation.messages.aget(role="assistant")).model == "claude-4-5-haiku"
