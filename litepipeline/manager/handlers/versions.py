"""``/app/history/*``, ``/venv/*`` and ``/venv/history/*`` (SPEC §8, §9): thin handlers
around :class:`~litepipeline.manager.versions.Versions`."""
from __future__ import annotations

from litepipeline.common.errors import InvalidParameters
from litepipeline.manager.handlers.apps import TRUE, UploadHandler
from litepipeline.manager.handlers.base import ManagerHandler
from litepipeline.manager.versions import Owner, history_view, parse_history_id, venv_view


class VersionHandler(ManagerHandler):
    """Base of the history routes: ``owner`` picks applications or venvs."""

    id_arg = "app_id"

    @property
    def owner(self) -> Owner:
        versions = self.manager.versions
        return versions.apps if self.id_arg == "app_id" else versions.venvs

    def config_wanted(self) -> bool:
        return (self.get_query_argument("config", "") or "").strip().lower() in TRUE

    def history_id(self) -> int:
        return parse_history_id(self.arg_str("history_id"))


class HistoryListHandler(VersionHandler):
    async def get(self) -> None:
        rows, total = await self.manager.versions.histories(
            self.owner, self.arg_str(self.id_arg), self.arg_int("offset", 0), self.arg_int("limit", 0))
        plural = "app_histories" if self.id_arg == "app_id" else "venv_histories"
        self.reply(**{plural: rows, "total": total})


class HistoryInfoHandler(VersionHandler):
    async def get(self) -> None:
        owner_id = self.arg_str(self.id_arg)
        row = await self.manager.versions.history(self.owner, owner_id, self.history_id())
        view = history_view(row, self.owner.id_column)
        # ``app_history`` / ``venv_history``: the key the 0.1.5 CLI reads
        out = {"history_info": view, self.owner.label.replace("application", "app") + "_history": view}
        if self.config_wanted() and self.id_arg == "app_id":
            out["history_config"] = await self.manager.versions.config(owner_id, row["sha1"])
        self.reply(**out)


class HistoryActivateHandler(VersionHandler):
    async def put(self) -> None:
        body = self.json_body()
        owner_id = body.get(self.id_arg)
        if not isinstance(owner_id, str) or not owner_id:
            raise InvalidParameters(f"missing field '{self.id_arg}'")
        if "history_id" not in body:
            raise InvalidParameters("missing field 'history_id'")
        row = await self.manager.versions.activate(self.owner, owner_id, parse_history_id(body["history_id"]))
        self.reply(**{self.id_arg: owner_id, "history_id": row["id"], "sha1": row["sha1"]})


class HistoryDeleteHandler(VersionHandler):
    async def delete(self) -> None:
        await self.manager.versions.delete_history(self.owner, self.arg_str(self.id_arg), self.history_id())
        self.reply()


class AppHistoryList(HistoryListHandler):
    pass


class AppHistoryInfo(HistoryInfoHandler):
    pass


class AppHistoryActivate(HistoryActivateHandler):
    pass


class AppHistoryDelete(HistoryDeleteHandler):
    pass


class VenvHistoryList(HistoryListHandler):
    id_arg = "venv_id"


class VenvHistoryInfo(HistoryInfoHandler):
    id_arg = "venv_id"


class VenvHistoryActivate(HistoryActivateHandler):
    id_arg = "venv_id"


class VenvHistoryDelete(HistoryDeleteHandler):
    id_arg = "venv_id"


# -- venvs ---------------------------------------------------------------------------------


class VenvUpload(UploadHandler):
    """Streamed like an application upload: same limits, same clean-up."""

    id_field = "venv_id"
    what = "venv"


class VenvCreateHandler(VenvUpload):
    async def post(self) -> None:
        upload, name, description = self.create_fields()
        versions = self.manager.versions
        venv_id = await versions.create(versions.venvs, upload[0], upload[1], name, description)
        self.reply(venv_id=venv_id)


class VenvUpdateHandler(VenvUpload):
    async def put(self) -> None:
        venv_id, upload, name, description = self.update_fields()
        versions = self.manager.versions
        await versions.update(versions.venvs, venv_id, upload, name, description)
        self.reply(venv_id=venv_id)

    post = put   # the 0.1.5 client sends POST


class VenvListHandler(ManagerHandler):
    async def get(self) -> None:
        versions = self.manager.versions
        offset, limit = self.arg_int("offset", 0), self.arg_int("limit", 0)
        rows, total = await versions.listing(versions.venvs, offset, limit)
        self.reply(venvs=[venv_view(r) for r in rows], total=total)


class VenvInfoHandler(ManagerHandler):
    async def get(self) -> None:
        versions = self.manager.versions
        self.reply(venv_info=venv_view(await versions.row(versions.venvs, self.arg_str("venv_id"))))


class VenvDeleteHandler(ManagerHandler):
    async def delete(self) -> None:
        await self.manager.versions.delete_venv(self.arg_str("venv_id"))
        self.reply()


class VenvDownloadHandler(ManagerHandler):
    async def get(self) -> None:
        venv_id = self.arg_str("venv_id")
        versions = self.manager.versions
        path, sha1 = await versions.download(versions.venvs, venv_id, self.arg_str("sha1", required=False))
        await self.send_tarball(venv_id, path, sha1)


ROUTES = [
    (r"/app/history/list", AppHistoryList),
    (r"/app/history/info", AppHistoryInfo),
    (r"/app/history/activate", AppHistoryActivate),
    (r"/app/history/delete", AppHistoryDelete),
    (r"/venv/create", VenvCreateHandler),
    (r"/venv/update", VenvUpdateHandler),
    (r"/venv/list", VenvListHandler),
    (r"/venv/info", VenvInfoHandler),
    (r"/venv/download", VenvDownloadHandler),
    (r"/venv/delete", VenvDeleteHandler),
    (r"/venv/history/list", VenvHistoryList),
    (r"/venv/history/info", VenvHistoryInfo),
    (r"/venv/history/activate", VenvHistoryActivate),
    (r"/venv/history/delete", VenvHistoryDelete),
]
