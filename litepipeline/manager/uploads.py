"""One multipart upload (an application or a venv), streamed to disk as it arrives.

The ``up_file`` part goes straight to a file in the application store's upload area,
hashed and counted on the way; the small text fields are kept in memory. A malformed or
oversized body is remembered and raised when the handler asks for the upload, so the
client gets an envelope rather than a reset connection. Whatever is not adopted by the
application store is removed by :meth:`Upload.discard`.
"""
from __future__ import annotations

import hashlib
from typing import Optional

from streaming_form_data import StreamingFormDataParser
from streaming_form_data.targets import BaseTarget, ValueTarget

from litepipeline.common.errors import InvalidParameters, PayloadTooLarge
from litepipeline.common.textcheck import check_text
from litepipeline.manager.appstore import remove

FIELD_LIMIT = 64 * 1024
FIELDS = ("name", "description", "app_id")


class FieldTarget(ValueTarget):
    """A text field that knows whether the form had it at all."""

    def __init__(self) -> None:
        super().__init__()
        self.present = False

    def on_start(self) -> None:
        self.present = True


class HashingFileTarget(BaseTarget):
    """A multipart target that streams a file part to disk, hashing and counting it."""

    def __init__(self, path: str, max_size: int) -> None:
        super().__init__()
        self.path = path
        self.max_size = max_size
        self.size = 0
        self.sha1 = hashlib.sha1()
        self.too_large = False
        self.present = False
        self._fp = None

    def on_start(self) -> None:
        self.present = True
        self._fp = open(self.path, "wb")  # noqa: SIM115 - closed by close(), at the part's end or the upload's

    def on_data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_size:
            self.too_large = True
            return
        self.sha1.update(chunk)
        self._fp.write(chunk)

    def on_finish(self) -> None:
        self.close()

    def close(self) -> None:
        if self._fp is not None:
            self._fp.close()
            self._fp = None


class Upload:
    """Feed it the body's chunks (``feed``), then read ``field``s and the ``file``."""

    def __init__(self, path: str, headers: dict, max_size: int, fields: tuple = FIELDS,
                 what: str = "application") -> None:
        try:
            self.parser = StreamingFormDataParser(headers=headers)
        except Exception as exc:  # noqa: BLE001 - e.g. a Content-Type without its boundary
            raise InvalidParameters(f"malformed multipart request: {exc}") from None
        self.path: Optional[str] = path
        self.max_size = max_size
        self.what = what   # for messages
        self.file = HashingFileTarget(path, max_size)
        self.fields = {key: FieldTarget() for key in fields}
        self.parser.register("up_file", self.file)
        for key, target in self.fields.items():
            self.parser.register(key, target)
        self.error: Optional[Exception] = None

    def feed(self, chunk: bytes) -> None:
        if self.error is not None:
            return
        try:
            self.parser.data_received(chunk)
        except Exception as exc:  # noqa: BLE001 - the parser's errors are the client's malformed body
            self.error = InvalidParameters(f"malformed multipart body: {exc}")
        if self.file.too_large:
            self.error = PayloadTooLarge(f"{self.what} file is larger than max_buffer_size ({self.max_size} bytes)")
            self.discard()   # don't keep what was written so far
        for key, target in self.fields.items():
            if len(target.value) > FIELD_LIMIT:
                self.error = InvalidParameters(f"field '{key}' is longer than {FIELD_LIMIT} bytes")

    def field(self, key: str) -> Optional[str]:
        """A text field's value; None when the form did not have it."""
        if self.error is not None:
            raise self.error
        target = self.fields[key]
        if not target.present:
            return None
        try:
            value = target.value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidParameters(f"field '{key}' is not valid UTF-8") from None
        check_text(value, path=key)
        return value

    def uploaded(self) -> Optional[tuple[str, str]]:
        """(path, sha1) of the uploaded file, or None when no file part was sent."""
        if self.error is not None:
            raise self.error
        self.file.close()
        if not self.file.present:
            return None
        if self.file.size == 0:
            raise InvalidParameters("field 'up_file' is empty")
        return self.path, self.file.sha1.hexdigest()

    def discard(self) -> None:
        """Remove the file unless the application store adopted it (it moved it away)."""
        self.file.close()
        if self.path is not None:
            remove(self.path)
            self.path = None
