"""The ``ray_anyio`` logger: warnings for what the library had to give up on.

Nothing is logged at INFO or below by default; a warning means an escalated
cancellation, or work that was left running because Ray allows nothing else.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("ray_anyio")
