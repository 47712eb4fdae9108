"""A real headless browser for the widget and console tests: Debian's chromium, driven by
Playwright (which cannot download its own browser here, so it is given the path)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from bot.settings import PROJECT_ROOT

SCREENSHOTS = Path(os.environ.get("KEFU_SCREENSHOT_DIR", PROJECT_ROOT / "tests" / "artifacts"))
LAUNCH_ARGS = ["--no-sandbox", "--disable-background-networking"]
# The widget's shadow root, for page.evaluate / wait_for_function (locators pierce it).
WIDGET = "document.getElementById('kefu-widget').shadowRoot"


def chromium_path() -> str | None:
    return os.environ.get("KEFU_CHROMIUM") or shutil.which("chromium")


async def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path
