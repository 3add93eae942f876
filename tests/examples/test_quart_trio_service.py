"""examples/quart_trio_service.py on Hypercorn's trio worker, driven by httpx."""

from __future__ import annotations

from .service_checks import ServiceChecks


class TestQuartTrioService(ServiceChecks):
    script = "quart_trio_service.py"
