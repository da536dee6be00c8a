"""Tables of application and venv versions (SPEC §8, §9), on the store's one ``METADATA``.

``app_histories`` and ``venv_histories`` hold one row per version (per SHA-1) of an
application or a venv; the integer ``id`` is the API's ``history_id``. The owner's
``sha1`` column names its active version. Imported by ``models.py`` so that Alembic and
``METADATA`` see them.
"""
from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, String, Table, Text, UniqueConstraint

from litepipeline.manager.store.models import METADATA

APP_HISTORIES = Table(
    "app_histories", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("application_id", String(36), index=True, nullable=False),
    Column("sha1", String(40), nullable=False),
    Column("description", Text, default="", nullable=False),
    Column("create_at", DateTime, nullable=False),
    UniqueConstraint("application_id", "sha1", name="uq_app_histories_sha1"),
)

VENVS = Table(
    "venvs", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("venv_id", String(36), unique=True, index=True, nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, default="", nullable=False),
    Column("sha1", String(40), nullable=False),
    Column("create_at", DateTime, nullable=False),
    Column("update_at", DateTime, nullable=False),
)

VENV_HISTORIES = Table(
    "venv_histories", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("venv_id", String(36), index=True, nullable=False),
    Column("sha1", String(40), nullable=False),
    Column("description", Text, default="", nullable=False),
    Column("create_at", DateTime, nullable=False),
    UniqueConstraint("venv_id", "sha1", name="uq_venv_histories_sha1"),
)
