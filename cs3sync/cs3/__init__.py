"""Async CS3 client: gateway RPCs over grpc.aio (cs3apis stubs), the data plane over httpx.

from cs3sync.cs3 import CS3Client, CS3Config, errors, types
"""

from . import errors, types
from .client import CS3Client
from .config import CS3Config
from .downloads import DownloadStream
from .types import LockContext, UploadSession

__all__ = ["CS3Client", "CS3Config", "DownloadStream", "LockContext", "UploadSession", "errors", "types"]
