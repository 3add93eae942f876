"""The engine under the public verbs.

The data path: :mod:`._watcher` (registrations, through :mod:`._readiness`) →
:mod:`._fetch` (batched ``ray.get``) → :mod:`._wakeup` (the only backend-specific
module). :mod:`._ray` holds every private Ray API; :mod:`._threads` every thread.
"""
