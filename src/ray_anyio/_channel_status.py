"""The answers of a channel's actor to its handles' calls."""

IN = "in"  # the item is in the channel (or room came: put again)
FULL = "full"  # no room: the item is not in the channel
ITEMS = "items"  # a receive's items, reserved under its ticket
EMPTY = "empty"  # nothing to receive now (receive_nowait)
END = "end"  # every sender closed and the buffer is empty
BROKEN = "broken"  # every receiver closed
CLOSED = "closed"  # this handle is closed (or its call was withdrawn)
