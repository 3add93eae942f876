"""The engine under the public verbs.

The data path reads from the file names: :mod:`._inputs` (what users pass) →
:mod:`._watcher` (registrations with Ray, through :mod:`._readiness`) →
:mod:`._fetch` (the batched ``ray.get``) → :mod:`._wakeup` (the only
backend-specific module) → the verb's result. :mod:`._ray` holds every private
Ray API; :mod:`._threads` is the one mechanism for work off the loop thread.
"""
