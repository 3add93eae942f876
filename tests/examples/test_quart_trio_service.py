"""examples/quart_trio_service.py on Hypercorn's trio worker, driven from trio."""

from __future__ import annotations

from .service_checks import ServiceChecks


class TestQuartTrioService(ServiceChecks):
    script = "quart_trio_service.py"
    client_backend = "trio"
