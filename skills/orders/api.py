"""POST /api/orders: orders in from the shop's system.

Authentication is the server's ("api" routes, bot/web/server.py): ``Authorization: Bearer <token>`` or
``X-Signature: sha256=<hex>`` over the raw body. Answers (JSON): 200 {"result": "applied" | "duplicate" | "stale",
"order_id", "status"}; 400 not JSON; 401 missing or wrong credentials; 413 body over ``max_body_bytes``; 422
{"error", "field"} for a bad or missing field; 503 the API is not configured.
"""

from __future__ import annotations

from bot.context import Services
from bot.http import FieldError, HttpRequest, HttpResponse
from skills.orders import apply_order, skill
from skills.orders.input import parse_order


@skill.route("POST", "/api/orders", auth="api")
async def post_order(request: HttpRequest, services: Services) -> HttpResponse:
    data = request.json()
    try:
        result = await apply_order(services, parse_order(data), "api")
    except FieldError as exc:
        return HttpResponse.error(422, exc.message, exc.field)
    return HttpResponse(200, {"result": result.outcome, "order_id": result.order_id, "status": result.status})
