"""``/stock/{sku}``: units on hand, reserved and available; restocking needs the operator scope."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.params import JSONBody

from caravan_commons.principal import OPERATOR, requires_scope
from caravan_commons.problems import problem_responses
from caravan_commons.schemas import strict_decode
from svc_a.api.deps import UnitOfWork
from svc_a.api.params import SkuPath
from svc_a.api.schemas import RestockIn, StockOut
from svc_a.service_layer import handlers


class StockController(Controller):
    path = "/stock"
    tags = ["stock"]

    @get("/{sku:str}", summary="The stock of a product", responses=problem_responses(404))
    async def get_stock(self, uow: UnitOfWork, sku: SkuPath) -> StockOut:
        return StockOut.of(await handlers.get_stock(sku, uow))

    @post(
        "/{sku:str}/restock",
        summary="Units arrive: on_hand rises (operator)",
        guards=[requires_scope(OPERATOR)],
        status_code=200,
        responses=problem_responses(403, 404, 409),
    )
    async def restock(
        self,
        request: Request,
        uow: UnitOfWork,
        sku: SkuPath,
        data: JSONBody[RestockIn],
    ) -> StockOut:
        data = strict_decode(await request.body(), RestockIn)
        return StockOut.of(await handlers.restock(sku, data.quantity, uow))
