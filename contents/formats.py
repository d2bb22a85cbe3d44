"""File content in Jupyter's two formats, ``text`` (UTF-8) and ``base64``, both ways, and the chunk
numbers of JupyterLab's chunked uploads. Anything else a client sends is a 400 that says what is wrong.
Notebooks are contents/notebooks.py's.
"""

from __future__ import annotations

import base64
import binascii

from tornado.web import HTTPError

from contents.models import Model

#: Highest chunk number of a chunked upload (JupyterLab's 1 MiB chunks: a 100 GiB file).
MAX_CHUNK = 100_000


def chunk_number(value: object) -> int:
    """JupyterLab numbers chunks 1, 2, ... and -1 for the last; anything else is a bad request."""
    if isinstance(value, bool) or not isinstance(value, int) or not (value == -1 or 1 <= value <= MAX_CHUNK):
        raise HTTPError(400, f"'chunk' must be -1 or a whole number from 1 to {MAX_CHUNK}")
    return value


def decode_file_content(content: object, format: str | None, api_path: str) -> bytes:
    """A model's ``content`` in ``format`` -> the file's bytes."""
    if format == "text":
        if not isinstance(content, str):
            raise HTTPError(400, f"Text content of {api_path} must be a string")
        try:
            return content.encode("utf-8")
        except UnicodeEncodeError:
            raise HTTPError(400, f"Text content of {api_path} is not valid Unicode") from None
    if format == "base64":
        if not isinstance(content, str):
            raise HTTPError(400, f"Base64 content of {api_path} must be a string")
        try:  # strict: "!!!!" must not become an empty file (line breaks are allowed)
            # As sent (JupyterLab's chunks have no line breaks): no copies of a 1.4 MB string first.
            return base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            pass
        try:
            return base64.b64decode("".join(content.split()).encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise HTTPError(400, f"Content of {api_path} is not valid base64") from None
    raise HTTPError(400, "Must specify format of file contents as 'text' or 'base64'")


def fill_file(model: Model, data: bytes, format: str | None, api_path: str) -> None:
    """Put a file's bytes into its model: as text when asked or when they are UTF-8, else base64."""
    if format not in (None, "text", "base64"):
        raise HTTPError(400, f"Unknown format {format!r} for {api_path}", reason="bad format")
    if format != "base64":
        try:
            model["content"] = data.decode("utf-8")
            model["format"] = "text"
        except UnicodeDecodeError:
            if format == "text":
                raise HTTPError(400, f"{api_path} is not UTF-8 encoded", reason="bad format") from None
    if model["content"] is None:
        model["content"] = base64.encodebytes(data).decode("ascii")
        model["format"] = "base64"
    if model["mimetype"] is None:
        model["mimetype"] = "text/plain" if model["format"] == "text" else "application/octet-stream"
