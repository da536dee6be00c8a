"""``python -m litepipeline.manager.store.migrate``: bring the store whose URL is read from
stdin to the newest schema (:meth:`Store.migrate`), then exit.

The manager runs this as a child process (:meth:`Store.migrate_in_child`): Alembic and what
it imports would otherwise stay in the manager's memory for its whole life (~11 MB, a fifth
of an idle manager), for a step that runs once per upgrade. The URL comes on
stdin, never as an argument: it may hold a password, and arguments are visible to every
user of the machine.
"""
from __future__ import annotations

import sys

from litepipeline.manager.store.store import Store


def main() -> int:
    url = sys.stdin.read().strip()
    store = Store(url)
    try:
        store.migrate()
    except Exception as exc:  # noqa: BLE001 - the parent reports it: one line, with its type
        print(f"{type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
