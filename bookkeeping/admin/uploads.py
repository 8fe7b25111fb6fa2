"""Upload limits that hold before a file is read: a page declares its kind of upload, and reading
stops as soon as the request says (or the stream shows) that the file is larger than that kind allows.

Django reads a multipart body when ``request.POST`` is first touched, which the CSRF check does
before the view runs. So the limited page is CSRF-exempt at the middleware and protected inside,
after its upload handler is in place — the pattern Django documents for changing upload handlers
(https://docs.djangoproject.com/en/5.2/topics/http/file-uploads/#modifying-upload-handlers-on-the-fly).
"""

from __future__ import annotations

import os
import secrets
from functools import wraps
from pathlib import Path

from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.views.decorators.csrf import csrf_protect
from import_export.tmp_storages import TempFolderStorage

from ..limits import too_large_message, upload_limit
from ..services.uploads import upload_dir

# Room for the form's other fields next to the file in a multipart body.
FORM_ROOM = 64 * 1024


class LimitedUploadHandler(FileUploadHandler):
    """Stops an upload larger than ``limit`` bytes, before its first byte or at the first byte too many.

    The rest of the request is read and discarded (``connection_reset=False``), so the page can
    answer with its form and a clear message instead of a broken connection.
    """

    def __init__(self, request, *, kind: str):
        super().__init__(request)
        self.kind = kind
        self.limit = upload_limit(kind)
        self.received = 0
        self.refuse_all = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.refuse_all = bool(content_length and content_length > self.limit + FORM_ROOM)

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0
        if self.refuse_all:
            self._stop()

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self._stop()
        return raw_data

    def file_complete(self, file_size):
        return None

    def _stop(self):
        self.request.upload_refused = too_large_message(self.kind)
        raise StopUpload(connection_reset=False)


def limit_uploads(kind: str):
    """Decorate a view that receives an upload of ``kind`` (see ``bookkeeping.limits.UPLOAD_KINDS``)."""

    def decorator(view):
        protected = csrf_protect(view)

        @wraps(view)
        def limited(request, *args, **kwargs):
            request.upload_refused = ""
            if request.method == "POST":
                request.upload_handlers.insert(0, LimitedUploadHandler(request, kind=kind))
            return protected(request, *args, **kwargs)

        limited.csrf_exempt = True  # checked by csrf_protect above, once the handler is in place
        limited.upload_kind = kind
        return limited

    return decorator


class UploadFolderStorage(TempFolderStorage):
    """django-import-export keeps a file between its preview and its confirmation here, in the upload
    folder, where the scheduled cleanup removes what nobody confirmed (not in the system's /tmp)."""

    def get_full_path(self):
        return str(_import_export_dir() / os.path.basename(self.name))

    def save(self, data):
        self.name = self.name or secrets.token_hex(16)
        if isinstance(data, bytes):
            Path(self.get_full_path()).write_bytes(data)
        else:
            Path(self.get_full_path()).write_text(data, encoding=self.encoding)

    def _open(self, mode="r"):
        self.name = self.name or secrets.token_hex(16)
        return open(self.get_full_path(), mode, encoding=None if "b" in mode else self.encoding)

    def remove(self):
        Path(self.get_full_path()).unlink(missing_ok=True)


def _import_export_dir() -> Path:
    directory = upload_dir() / "import-export"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
