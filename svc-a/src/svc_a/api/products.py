"""``/products``: the catalogue. Anyone the security groups let in may read it; creating and
changing products needs the operator scope (asserted by the gateway)."""

from __future__ import annotations

from litestar import Controller, Request, get, patch, post
from litestar.params import JSONBody

from caravan_commons.principal import OPERATOR, requires_scope
from caravan_commons.problems import problem_responses
from caravan_commons.schemas import strict_decode
from svc_a.api.deps import UnitOfWork
from svc_a.api.params import DEFAULT_PAGE_SIZE, ActiveFilter, Cursor, Limit, SkuFilter, SkuPath
from svc_a.api.schemas import ProductCreate, ProductOut, ProductPage, ProductPatch
from svc_a.service_layer import handlers

operator_only = [requires_scope(OPERATOR)]


class ProductController(Controller):
    path = "/products"
    tags = ["products"]

    @get(
        "/",
        summary="List products by sku (cursor pagination; filters: active, sku)",
        description="`?sku=A&sku=B` returns just those products (unknown skus are left out), "
        "e.g. to read the prices of an order's lines in one call.",
    )
    async def list_products(
        self,
        uow: UnitOfWork,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_PAGE_SIZE,
        active: ActiveFilter = None,
        sku: SkuFilter = None,
    ) -> ProductPage:
        products, next_cursor = await handlers.list_products(
            uow, after=cursor, limit=limit, active=active, skus=sku
        )
        return ProductPage(items=[ProductOut.of(p) for p in products], next_cursor=next_cursor)

    @get("/{sku:str}", summary="One product", responses=problem_responses(404))
    async def get_product(self, uow: UnitOfWork, sku: SkuPath) -> ProductOut:
        return ProductOut.of(await handlers.get_product(sku, uow))

    @post(
        "/",
        summary="Add a product and its stock (operator)",
        guards=operator_only,
        status_code=201,
        responses=problem_responses(403, 409),
    )
    async def create_product(
        self, request: Request, uow: UnitOfWork, data: JSONBody[ProductCreate]
    ) -> ProductOut:
        data = strict_decode(await request.body(), ProductCreate)
        product = await handlers.add_product(data.to_domain(), uow, initial_stock=data.initial_stock)
        return ProductOut.of(product)

    @patch(
        "/{sku:str}",
        summary="Change a product's name, description, price or active flag (operator)",
        guards=operator_only,
        responses=problem_responses(403, 404),
    )
    async def change_product(
        self,
        request: Request,
        uow: UnitOfWork,
        sku: SkuPath,
        data: JSONBody[ProductPatch],
    ) -> ProductOut:
        data = strict_decode(await request.body(), ProductPatch)
        return ProductOut.of(await handlers.change_product(sku, data.apply, uow))
