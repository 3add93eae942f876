"""examples/fastapi_service.py on uvicorn, driven by httpx."""

from __future__ import annotations

from .service_checks import ServiceChecks


class TestFastAPIService(ServiceChecks):
    script = "fastapi_service.py"
    # uvicorn logs each request it cancels at the end of its graceful shutdown.
    cancelled_request_traceback = (
        "CancelledError: Task cancelled, timeout graceful shutdown exceeded"
    )
