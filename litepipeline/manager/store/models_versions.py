"""Models of application and venv versions (SPEC §8, §9), on the store's one ``Base``.

``app_histories`` and ``venv_histories`` hold one row per version (per SHA-1) of an
application or a venv; the integer ``id`` is the API's ``history_id``. The owner's
``sha1`` column names its active version. Imported by ``models.py`` so that Alembic and
``Base.metadata`` see them.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from litepipeline.manager.store.models import Base


class AppHistory(Base):
    __tablename__ = "app_histories"
    __table_args__ = (UniqueConstraint("application_id", "sha1", name="uq_app_histories_sha1"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(String(36), index=True)
    sha1: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text, default="")
    create_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Venv(Base):
    __tablename__ = "venvs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    venv_id: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    sha1: Mapped[str] = mapped_column(String(40))
    create_at: Mapped[dt.datetime] = mapped_column(DateTime)
    update_at: Mapped[dt.datetime] = mapped_column(DateTime)


class VenvHistory(Base):
    __tablename__ = "venv_histories"
    __table_args__ = (UniqueConstraint("venv_id", "sha1", name="uq_venv_histories_sha1"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    venv_id: Mapped[str] = mapped_column(String(36), index=True)
    sha1: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text, default="")
    create_at: Mapped[dt.datetime] = mapped_column(DateTime)
