"""``/app/*``: create/update (streamed multipart uploads), list, info, delete, download."""
from __future__ import annotations

import os
from typing import Optional

import tornado.web
from streaming_form_data import StreamingFormDataParser
from streaming_form_data.targets import ValueTarget

from litepipeline.common.errors import InvalidParameters, PayloadTooLarge
from litepipeline.common.textcheck import check_text
from litepipeline.manager.appstore import HashingFileTarget, remove
from litepipeline.manager.handlers.base import ManagerHandler
from litepipeline.manager.manager import NAME_LIMIT

MULTIPART_SLACK = 64 * 1024   # room for the form's other fields and part headers
FIELD_LIMIT = 64 * 1024


def check_name_length(name: str) -> None:
    if len(name) > NAME_LIMIT:
        raise InvalidParameters(f"field 'name' is longer than {NAME_LIMIT} characters")


@tornado.web.stream_request_body
class UploadHandler(ManagerHandler):
    """Streams a multipart form to disk while it arrives; never holds the file in memory."""

    upload_path: Optional[str] = None

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
        self.upload_path = self.manager.apps.new_upload_path()
        self.file = HashingFileTarget(self.upload_path, limit)
        self.fields = {k: ValueTarget() for k in ("name", "description", "app_id")}
        self.parser = StreamingFormDataParser(headers=self.request.headers)
        self.parser.register("up_file", self.file)
        for key, target in self.fields.items():
            self.parser.register(key, target)
        self.body_error: Optional[Exception] = None

    def data_received(self, chunk: bytes) -> None:
        # Errors are remembered, not raised: tornado answers an exception raised here by
        # resetting the connection; the verb method turns them into a proper envelope.
        if self.body_error is not None:
            return
        try:
            self.parser.data_received(chunk)
        except Exception as exc:  # noqa: BLE001 - the parser's errors are the client's malformed body
            self.body_error = InvalidParameters(f"malformed multipart body: {exc}")
        if self.file.too_large:
            self.body_error = PayloadTooLarge(f"application file is larger than max_buffer_size "
                                              f"({self.manager.config.max_buffer_size} bytes)")
            self.file.close()
            remove(self.upload_path)   # don't keep what was written so far
        for key, target in self.fields.items():
            if len(target.value) > FIELD_LIMIT:
                self.body_error = InvalidParameters(f"field '{key}' is longer than {FIELD_LIMIT} bytes")

    def field(self, key: str) -> Optional[str]:
        if self.body_error is not None:
            raise self.body_error
        if not self.fields[key]._started:
            return None
        try:
            value = self.fields[key].value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidParameters(f"field '{key}' is not valid UTF-8") from None
        check_text(value, path=key)
        return value

    def uploaded(self) -> Optional[tuple[str, str]]:
        """(path, sha1) of the uploaded file, or None when no file part was sent."""
        if self.body_error is not None:
            raise self.body_error
        self.file.close()
        if not self.file._started:
            return None
        if self.file.size == 0:
            raise InvalidParameters("field 'up_file' is empty")
        return self.upload_path, self.file.sha1.hexdigest()

    def on_finish(self) -> None:
        self._cleanup()

    def on_connection_close(self) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        # the Manager moved an accepted file away; anything still here was rejected or cut off
        if self.upload_path is not None:
            if getattr(self, "file", None) is not None:
                self.file.close()
            remove(self.upload_path)
            self.upload_path = None


class AppCreateHandler(UploadHandler):
    async def post(self) -> None:
        upload = self.uploaded()
        if upload is None:
            raise InvalidParameters("missing file field 'up_file'")
        name = self.field("name")
        if not name or not name.strip():
            raise InvalidParameters("missing field 'name'")
        check_name_length(name)
        app_id = await self.manager.create_app(upload[0], upload[1], name, self.field("description") or "")
        self.reply(app_id=app_id)


class AppUpdateHandler(UploadHandler):
    async def put(self) -> None:
        app_id = self.field("app_id")
        if not app_id:
            raise InvalidParameters("missing field 'app_id'")
        upload = self.uploaded()
        name = self.field("name")
        if name is not None and not name.strip():
            raise InvalidParameters("field 'name' must not be empty")
        if name is not None:
            check_name_length(name)
        await self.manager.update_app(app_id, upload, name, self.field("description"))
        self.reply(app_id=app_id)


class AppListHandler(ManagerHandler):
    async def get(self) -> None:
        apps, total = await self.manager.list_apps(self.arg_int("offset", 0), self.arg_int("limit", 0))
        self.reply(apps=apps, total=total)


class AppInfoHandler(ManagerHandler):
    async def get(self) -> None:
        self.reply(app_info=await self.manager.app_info(self.arg_str("app_id")))


class AppDeleteHandler(ManagerHandler):
    async def delete(self) -> None:
        await self.manager.delete_app(self.arg_str("app_id"))
        self.reply()


class AppDownloadHandler(ManagerHandler):
    async def get(self) -> None:
        app_id = self.arg_str("app_id")
        path, sha1 = await self.manager.app_download(app_id, self.arg_str("sha1", required=False))
        self.set_header("Content-Type", "application/gzip")
        self.set_header("Content-Disposition", f'attachment; filename="{app_id}.tar.gz"')
        self.set_header("X-LitePipeline-SHA1", sha1)
        self.set_header("Content-Length", str(os.path.getsize(path)))
        async for chunk in self.manager.read_chunks(path):
            self.write(chunk)
            await self.flush()
        self.finish()
