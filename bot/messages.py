"""The gateway's own words to shoppers (the assistant's words live in domain.yml)."""

from __future__ import annotations

SYSTEM_MESSAGES: dict[str, tuple[str, str]] = {
    # key: (zh, en)
    "turn_failed": (
        "抱歉，系统开了个小差，没能处理您的消息。我已经通知人工客服，稍后会有同事为您跟进。",
        "Sorry, something went wrong on our side and I couldn't handle that message. "
        "I've flagged this chat for a colleague, who will follow up shortly.",
    ),
    "message_too_long": (
        "消息太长了（最多 {limit} 个字），请分几条发送。",
        "That message is too long (at most {limit} characters). Please split it up.",
    ),
    "unknown_button": (
        "这个选项已经失效了，请直接输入您的问题。",
        "That option is no longer available. Please type your question.",
    ),
    "busy": (
        "您发送得太快啦，请等我回复后再发～",
        "You're sending messages faster than I can answer. Please wait for my reply.",
    ),
}


def system_message(key: str, language: str, **values: object) -> str:
    zh, en = SYSTEM_MESSAGES[key]
    return (en if language == "en" else zh).format(**values)
