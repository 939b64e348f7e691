"""The words of the app's title request (chat/turns/titles.py), apart so the demo model can recognise it without
importing the turn code."""

TITLE_PROMPT = (
    "You name conversations. The user's message holds the first exchange of a conversation: the person's "
    "message between <user> tags and the reply between <assistant> tags. Answer with a title for the "
    "conversation and nothing else: 3 to 6 words, in the conversation's language, no quotes, no trailing "
    "punctuation."
)
