"""Model lifecycle tables: trained model versions, their gate results, and which one serves."""

from __future__ import annotations
