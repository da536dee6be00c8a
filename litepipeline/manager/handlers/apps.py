"""``/app/*``: create/update (streamed multipart uploads), list, info, delete, download."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import tornado.web

from litepipeline.common.errors import InvalidParameters, PayloadTooLarge
from litepipeline.manager.handlers.base import ManagerHandler
from litepipeline.manager.manager import NAME_LIMIT

if TYPE_CHECKING:   # imported by the first upload: the multipart parser pulls in ~8 MB of modules
    from litepipeline.manager.uploads import Upload

TRUE = ("1", "true", "yes", "on")
MULTIPART_SLACK = 64 * 1024   # room for the form's other fields and part headers


def check_name_length(name: str) -> None:
    if len(name) > NAME_LIMIT:
        raise InvalidParameters(f"field 'name' is longer than {NAME_LIMIT} characters")


@tornado.web.stream_request_body
class UploadHandler(ManagerHandler):
    """Streams a multipart form to disk while it arrives (see :class:`Upload`)."""

    upload: Optional[Upload] = None
    #: the form field naming what an update changes (``venv_id`` for venvs)
    id_field = "app_id"
    what = "application"

    def body_limit(self) -> None:
        return None   # uploads have their own limit, max_buffer_size (below)

    def prepare(self) -> None:
        super().prepare()
        limit = self.manager.config.max_buffer_size
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > limit + MULTIPART_SLACK:
            raise PayloadTooLarge(f"upload of {length} bytes is larger than max_buffer_size ({limit} bytes)")
        if not self.request.headers.get("Content-Type", "").startswith("multipart/form-data"):
            raise InvalidParameters("request must be multipart/form-data with a file field 'up_file'")
        self.request.connection.set_max_body_size(limit + MULTIPART_SLACK)
        from litepipeline.manager.uploads import Upload
        self.upload = Upload(self.manager.apps.new_upload_path(), self.request.headers, limit,
                             fields=("name", "description", self.id_field), what=self.what)

    def data_received(self, chunk: bytes) -> None:
        # errors are kept by the upload, not raised: tornado answers an exception raised
        # here by resetting the connection; the verb method turns them into an envelope
        self.upload.feed(chunk)

    def field(self, key: str) -> Optional[str]:
        return self.upload.field(key)

    def uploaded(self) -> Optional[tuple[str, str]]:
        return self.upload.uploaded()

    def create_fields(self) -> tuple[tuple[str, str], str, str]:
        """A create's (upload path, sha1), name and description: the file and a name are required."""
        upload = self.uploaded()
        if upload is None:
            raise InvalidParameters("missing file field 'up_file'")
        name = self.field("name")
        if not name or not name.strip():
            raise InvalidParameters("missing field 'name'")
        check_name_length(name)
        return upload, name, self.field("description") or ""

    def update_fields(self) -> tuple[str, Optional[tuple[str, str]], Optional[str], Optional[str]]:
        """An update's owner id, optional upload, name and description (None: unchanged)."""
        owner_id = self.field(self.id_field)
        if not owner_id:
            raise InvalidParameters(f"missing field '{self.id_field}'")
        upload = self.uploaded()
        # empty fields change nothing: the 0.1.5 client sends "" for what it leaves alone
        name = self.field("name") or None
        description = self.field("description") or None
        if name is not None and not name.strip():
            raise InvalidParameters("field 'name' must not be blank")
        if name is not None:
            check_name_length(name)
        return owner_id, upload, name, description

    def on_finish(self) -> None:
        self._cleanup()

    def on_connection_close(self) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        # the Manager moved an accepted file away; anything still here was rejected or cut off
        if self.upload is not None:
            self.upload.discard()
            self.upload = None


class AppCreateHandler(UploadHandler):
    async def post(self) -> None:
        upload, name, description = self.create_fields()
        app_id = await self.manager.create_app(upload[0], upload[1], name, description)
        self.reply(app_id=app_id)


class AppUpdateHandler(UploadHandler):
    async def put(self) -> None:
        app_id, upload, name, description = self.update_fields()
        await self.manager.update_app(app_id, upload, name, description)
        self.reply(app_id=app_id)

    post = put   # the 0.1.5 client sends POST


class AppListHandler(ManagerHandler):
    async def get(self) -> None:
        apps, total = await self.manager.list_apps(self.arg_int("offset", 0), self.arg_int("limit", 0))
        self.reply(apps=apps, total=total)


class AppInfoHandler(ManagerHandler):
    async def get(self) -> None:
        config = (self.get_query_argument("config", "") or "").strip().lower() in TRUE
        self.reply(**await self.manager.app_info(self.arg_str("app_id"), config))


class AppDeleteHandler(ManagerHandler):
    async def delete(self) -> None:
        await self.manager.delete_app(self.arg_str("app_id"))
        self.reply()


class AppDownloadHandler(ManagerHandler):
    async def get(self) -> None:
        app_id = self.arg_str("app_id")
        path, sha1 = await self.manager.app_download(app_id, self.arg_str("sha1", required=False))
        await self.send_tarball(app_id, path, sha1)
