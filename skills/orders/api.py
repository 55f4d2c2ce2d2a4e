"""POST /api/orders: orders in from the shop's system.

Authentication is the server's ("api" routes, bot/web/server.py): ``Authorization: Bearer <token>`` or
``X-Signature: sha256=<hex>`` over the raw body. Answers (JSON): 200 {"result": "applied" | "duplicate" | "stale",
"order_id", "status"}; 400 not JSON (or nested too deeply); 401 missing or wrong credentials; 413 body over
``max_body_bytes``; 422 {"error", "field"} for a bad or missing field; 503 the API is not configured.
"""

from __future__ import annotations

import json
from typing import Any

from bot.context import Services
from bot.http import FieldError, HttpRequest, HttpResponse
from skills.orders import apply_order, skill
from skills.orders.input import json_int, parse_order


class _NotJson(ValueError):
    pass


def _body(request: HttpRequest) -> Any:
    """The body as JSON. Read here rather than by ``request.json()`` for ``json_int``: a number of thousands of
    digits is then the field's error (422 naming it), not a conversion error of the whole body."""
    try:
        return json.loads(request.body, parse_int=json_int)
    except RecursionError:  # "[" × 100,000: the decoder gives up at the interpreter's recursion limit
        raise _NotJson("body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise _NotJson(f"body is not valid JSON: {exc}") from None


@skill.route("POST", "/api/orders", auth="api")
async def post_order(request: HttpRequest, services: Services) -> HttpResponse:
    try:
        data = _body(request)
    except _NotJson as exc:
        return HttpResponse.error(400, str(exc))
    try:
        result = await apply_order(services, parse_order(data), "api")
    except FieldError as exc:
        return HttpResponse.error(422, exc.message, exc.field)
    return HttpResponse(200, {"result": result.outcome, "order_id": result.order_id, "status": result.status})
