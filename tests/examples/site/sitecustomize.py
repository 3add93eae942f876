"""Imported at the start of every example server the tests run (``PYTHONPATH``).

On Python 3.10 an uncaught exception group prints in full only through the
``exceptiongroup`` backport's excepthook, which it installs on import only
while ``sys.excepthook`` is Python's own. Importing ``ray`` first replaces the
hook (Ray's calls the one it found), so a server that crashed with a group
printed "(1 sub-exception)" and nothing of the sub-exception. Imported here,
before the example's own imports, the backport's hook is the one Ray calls.
"""

import importlib
import sys

if sys.version_info < (3, 11):
    # Its import installs the hook (imported by name: the type checker's
    # environment, on a newer Python, does not have the backport).
    importlib.import_module("exceptiongroup")
