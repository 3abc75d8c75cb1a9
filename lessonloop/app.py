"""`create_app()`: the litestar application mounting every component's routes, with a lifespan that
owns the PostgreSQL pool, the Redis clients, the learner model and the identity provider's key refresher."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from curator.learner_model import LearnerModel
from curator.scheduler import ReviewScheduler
from factory.routes import ROUTES as FACTORY_ROUTES
from review_portal.api_routes import ROUTES as REVIEW_API_ROUTES
from review_portal.web import portal_config
from serving.lessons import LessonStarter
from serving.me_routes import ROUTES as ME_ROUTES
from serving.ops import ROUTES as OPS_ROUTES
from serving.progress import ProgressService
from serving.routes import ROUTES as SERVING_ROUTES
from serving.warm_lane import WarmLane
from shared.asgi import App
from shared.http import EXCEPTION_HANDLERS
from shared.ratelimit import IPRateLimit
from shared.runtime import Endpoints, resolve_endpoints
from shared.server_timing import RunQueueClock
from shared.services import Services
from shared.settings import Settings, get_settings


def create_app(settings: Settings | None = None, endpoints: Endpoints | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        eps = endpoints or resolve_endpoints(settings)[0]
        services = await Services.open(settings, eps)
        app.state.services = services
        model = LearnerModel.load(settings.curator.model_params)
        app.state.starter = LessonStarter.create(services, model)
        app.lanes = (WarmLane(app.state.starter),)  # type: ignore[attr-defined]
        # one population cache per process: the answer path keeps the cold path's current
        app.state.progress = ProgressService(services, model, ReviewScheduler(),
                                             populations=app.state.starter.curator.populations)
        await services.verifier.start()  # the identity provider's keys, if any: fetched now, refreshed off-request
        # Everything built at start-up (routes, clients, the model) moves out of the garbage
        # collector's reach: its full collections then scan only what requests allocate.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            app.lanes = ()  # type: ignore[attr-defined]
            await app.state.starter.warm.aclose()
            await services.verifier.aclose()
            await services.close()

    portal = portal_config(settings)
    app = App(
        route_handlers=[*OPS_ROUTES, *SERVING_ROUTES, *ME_ROUTES, *FACTORY_ROUTES, *REVIEW_API_ROUTES,
                        *portal["route_handlers"]],
        template_config=portal["template_config"],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        logging_config=None,  # keep shared.logs' redacting JSON handler (litestar's default replaces it)
        request_max_body_size=settings.serving.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Lessonloop", version="1.0.0",
            description="Adaptive-learning platform: lesson API, generation jobs, review and the bank.",
            components=Components(security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}),
            security=[{"bearer": []}],
        ),
        debug=False,
    )
    app.ip_limit = IPRateLimit(settings.serving.rate_per_ip)
    if settings.serving.server_timing_cpu_wait:
        app.cpu_wait = RunQueueClock()
    return app
