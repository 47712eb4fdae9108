"""Privacy: finding and masking personal data, role-aware views of text, the customer export.

Consent and the audit log are services (``bot.services.consent``, ``bot.services.audit``).
"""
