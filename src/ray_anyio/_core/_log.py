"""The ``ray_anyio`` logger: warnings (forced cancels, work left running)."""

from __future__ import annotations

import logging

logger = logging.getLogger("ray_anyio")
