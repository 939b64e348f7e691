"""Per-conversation model settings: what the user chose, falling back to the operator's defaults."""

from django.conf import settings


def system_prompt(conversation):
    return conversation.system_prompt.strip() or settings.CHAT_SYSTEM_PROMPT


def max_tokens(conversation):
    return conversation.max_tokens or settings.INFERENCE_MAX_TOKENS


def request_options(conversation):
    """Keyword arguments of ``inference.stream_chat`` for a reply in ``conversation`` (tools excepted)."""
    temperature = conversation.temperature
    if temperature is None:
        temperature = settings.CHAT_DEFAULT_TEMPERATURE
    options = {
        "model": conversation.model_id or settings.INFERENCE_MODEL_ID,
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
    return options
