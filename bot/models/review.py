"""Ops review tables: turn labels (corrections) and the full-text index of messages."""

from __future__ import annotations
