"""Per-conversation model settings: what the owner chose, validated, falling back to the operator's defaults.

A blank or null setting means "the operator's default" (chatsite/settings.py), so a changed default reaches
every conversation that never chose otherwise.
"""

from django import forms
from django.conf import settings

from chat.models import Conversation

SYSTEM_PROMPT_MAX_CHARS = 20_000
# Claude 4.5 models write at most 64k tokens: a larger max_tokens is refused here, with a message, not by the API.
MAX_TOKENS_CEILING = 64_000
# Heroku's floor for extended_thinking.budget_tokens.
THINKING_BUDGET_MIN = 1024
FIELDS = (
    "system_prompt", "model_id", "temperature", "max_tokens",
    "prompt_caching", "tools_enabled", "thinking", "thinking_budget",
)


def system_prompt(conversation):
    return conversation.system_prompt.strip() or settings.CHAT_SYSTEM_PROMPT


def max_tokens(conversation):
    return conversation.max_tokens or settings.INFERENCE_MAX_TOKENS


def model_id(conversation):
    # A model the operator has since withdrawn from CHAT_MODELS falls back to the default, not to a 403.
    if conversation.model_id in settings.CHAT_MODELS:
        return conversation.model_id
    return settings.INFERENCE_MODEL_ID


def request_options(conversation):
    """Keyword arguments of ``inference.stream_chat`` for a reply in ``conversation`` (tools excepted)."""
    temperature = conversation.temperature
    if temperature is None:
        temperature = settings.CHAT_DEFAULT_TEMPERATURE
    options = {
        "model": model_id(conversation),
        "max_tokens": max_tokens(conversation),
        "temperature": temperature,
        "prompt_caching": conversation.prompt_caching,
        "extended_thinking": None,
    }
    if conversation.thinking:
        options["extended_thinking"] = {
            "enabled": True,
            "budget_tokens": conversation.thinking_budget or settings.CHAT_THINKING_BUDGET,
            "include_reasoning": True,
        }
        # Claude accepts no temperature but its default with extended thinking on: leave it out.
        options["temperature"] = None
    return options


def current(conversation):
    """The stored settings as JSON; blank and null mean the default (see ``defaults``)."""
    values = {name: getattr(conversation, name) for name in FIELDS}
    if values["model_id"] not in settings.CHAT_MODELS:
        values["model_id"] = ""
    return values


def defaults():
    return {
        "system_prompt": settings.CHAT_SYSTEM_PROMPT,
        "model_id": settings.INFERENCE_MODEL_ID,
        "temperature": settings.CHAT_DEFAULT_TEMPERATURE,
        "max_tokens": settings.INFERENCE_MAX_TOKENS,
        "thinking_budget": settings.CHAT_THINKING_BUDGET,
    }


def describe(conversation):
    """Everything the settings dialog shows: the values, the defaults behind blanks, the choices and limits."""
    return {
        "settings": current(conversation),
        "defaults": defaults(),
        "models": list(settings.CHAT_MODELS),
        "limits": {
            "system_prompt_chars": SYSTEM_PROMPT_MAX_CHARS,
            "max_tokens": MAX_TOKENS_CEILING,
            "thinking_budget_min": THINKING_BUDGET_MIN,
        },
    }


def _between(label, low, high):
    message = f"{label} must be a whole number from {low:,} to {high:,}."
    return {"invalid": message, "min_value": message, "max_value": message}


class SettingsForm(forms.Form):
    """The whole set of settings, as the dialog posts it: a field left out is blank (the default) or off."""

    system_prompt = forms.CharField(
        required=False,
        max_length=SYSTEM_PROMPT_MAX_CHARS,
        error_messages={
            "max_length": f"The system prompt may have at most {SYSTEM_PROMPT_MAX_CHARS:,} characters "
            "(it has %(show_value)d)."
        },
    )
    model_id = forms.ChoiceField(
        required=False, error_messages={"invalid_choice": "Choose one of the models this site offers."}
    )
    temperature = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        error_messages=dict.fromkeys(
            ("invalid", "min_value", "max_value"), "Temperature must be a number from 0 to 1."
        ),
    )
    max_tokens = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_TOKENS_CEILING,
        error_messages=_between("Max tokens", 1, MAX_TOKENS_CEILING),
    )
    prompt_caching = forms.BooleanField(required=False)
    tools_enabled = forms.BooleanField(required=False)
    thinking = forms.BooleanField(required=False)
    thinking_budget = forms.IntegerField(
        required=False, min_value=THINKING_BUDGET_MIN, max_value=MAX_TOKENS_CEILING - 1,
        error_messages=_between("The thinking budget", THINKING_BUDGET_MIN, MAX_TOKENS_CEILING - 1),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read per form, not at import, so the operator's list is the one in force now.
        self.fields["model_id"].choices = [("", "Default"), *((model, model) for model in settings.CHAT_MODELS)]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("thinking") and not self.has_error("max_tokens") and not self.has_error("thinking_budget"):
            self._check_thinking_fits(cleaned)
        if cleaned.get("thinking") and cleaned.get("temperature") is not None:
            # Claude takes no temperature but its default while it thinks (request_options leaves it out).
            self.add_error("temperature", "Extended thinking uses the model's default temperature: leave this blank.")
        return cleaned

    def _check_thinking_fits(self, cleaned):
        # The API counts the thinking budget inside max_tokens and refuses a budget that does not fit.
        limit = cleaned.get("max_tokens") or settings.INFERENCE_MAX_TOKENS
        budget = cleaned.get("thinking_budget")
        if budget is not None and budget >= limit:
            self.add_error(
                "thinking_budget",
                f"The thinking budget must be less than max tokens ({limit:,}): lower it or raise max tokens.",
            )
        elif budget is None and settings.CHAT_THINKING_BUDGET >= limit:
            self.add_error(
                "max_tokens",
                f"Thinking uses a budget of {settings.CHAT_THINKING_BUDGET:,} tokens by default: raise max tokens "
                f"above that, or set a smaller thinking budget.",
            )

    def save(self, conversation):
        """Store the cleaned settings; only call once ``is_valid()`` is true."""
        values = {name: self.cleaned_data[name] for name in FIELDS}
        # A queryset update leaves updated_at alone: a settings change is not activity, the sidebar keeps its order.
        Conversation.objects.filter(pk=conversation.pk).update(**values)
        for name, value in values.items():
            setattr(conversation, name, value)
        return conversation
