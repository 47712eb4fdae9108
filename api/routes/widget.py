"""``/widget.js``: the chat widget, embeddable in any page with one script tag.

Its URL carries no version (stores paste it once), so browsers keep it for five minutes and
then revalidate it with its ETag: a new release reaches every shop within minutes, and an
unchanged one costs a 304.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(tags=["widget"], include_in_schema=False)
WIDGET = Path(__file__).resolve().parent.parent / "static" / "widget.js"
MAX_AGE = 300


@lru_cache(maxsize=1)
def _widget(mtime: float) -> tuple[bytes, str]:
    body = WIDGET.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@router.get("/widget.js")
async def widget_js(request: Request) -> Response:
    body, etag = _widget(WIDGET.stat().st_mtime)
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={MAX_AGE}, must-revalidate",
        # A script tag needs no CORS, but a host page may load it with crossorigin=anonymous.
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
