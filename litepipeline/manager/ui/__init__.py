"""The web interface served by ``litemanager`` at ``/ui/`` (see :mod:`.app`).

Kept free of imports so the manager's base handler can use :mod:`.auth` without
pulling in the handlers.
"""
