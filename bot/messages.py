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
    # Human handoff (api/handoff.py).
    "handoff_queued": (
        "已为您排队转接人工客服，您前面还有 {ahead} 位，预计等待约 {minutes} 分钟。"
        "如不想等待，可以随时取消，继续和我聊。",
        "You're in line for a human colleague: {ahead} ahead of you, about {minutes} min. "
        "You can cancel at any time and carry on with me.",
    ),
    "handoff_agent_joined": (
        "人工客服 {name} 已接入，正在为您服务。",
        "{name} from our customer service team has joined the chat.",
    ),
    "handoff_cancelled": (
        "好的，已取消排队，我继续为您服务～",
        "OK, you've left the queue. I'm here to help.",
    ),
    "handoff_back_to_bot": (
        "人工客服已结束服务，接下来由我继续为您服务。",
        "Our colleague has left the chat; I'll take it from here.",
    ),
    "handoff_returned": (
        "客服暂时离开了，已为您重新排队，马上安排其他同事接待。",
        "Our colleague had to step away; you're back in line for the next one.",
    ),
    "handoff_closed": (
        "本次会话已结束，感谢您的耐心。如还有问题，直接发消息即可。",
        "This chat has ended. Thanks for your patience — just write again if you need us.",
    ),
    "handoff_offline": (
        "人工客服的服务时间是每天 {hours}，现在暂时无人接待。请留下您的联系电话和问题，"
        "同事上班后会尽快回电。",
        "Our colleagues are available {hours} daily and nobody can take your chat right now. "
        "Leave a phone number and a short message, and we'll call you back.",
    ),
    "ticket_taken": (
        "已记录您的电话 {phone}，同事会尽快回电，感谢您的耐心！",
        "Thanks — we've noted {phone} and a colleague will call you back soon.",
    ),
    "csat_question": (
        "我回来啦～请问您对刚才人工客服的服务满意吗？（1 分很不满意，5 分非常满意）",
        "I'm back. How satisfied were you with our colleague's help? (1 = not at all, 5 = very)",
    ),
    "csat_thanks": (
        "感谢您的评分！还想补充点什么吗？直接输入即可，也可以点“跳过”。",
        "Thanks for rating us! Anything you'd like to add? Just type it, or tap Skip.",
    ),
    "csat_skip_button": ("跳过", "Skip"),
    "csat_done": (
        "感谢您的反馈！还有其他可以帮您的吗？",
        "Thanks for your feedback! Is there anything else I can help with?",
    ),
}


def system_message(key: str, language: str, **values: object) -> str:
    zh, en = SYSTEM_MESSAGES[key]
    return (en if language == "en" else zh).format(**values)
