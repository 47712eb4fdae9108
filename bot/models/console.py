"""The agent console's tables: canned responses (话术库), private notes, conversation tags and dispositions."""

from __future__ import annotations
