"""The exception tree.

    FacelensError
    ├── TaskFailure                 an image could not be analysed: result_code -1
    │   ├── UrlNotAllowed           URL_NOT_ALLOWED
    │   ├── ImageDownloadFailed     IMAGE_DOWNLOAD_FAILED
    │   ├── ImageTooLarge           IMAGE_TOO_LARGE
    │   ├── ImageDecodeFailed       IMAGE_DECODE_FAILED
    │   ├── ImageFormatUnsupported  IMAGE_FORMAT_UNSUPPORTED
    │   ├── VideoFailure            VIDEO_* and NO_VIDEO_STREAM (a video task)
    │   └── InternalTaskError       INTERNAL_ERROR
    ├── InsufficientCredits         API code 100040
    ├── InvalidKey                  API code 100030
    ├── InvalidParameter            API code 100010
    ├── NotFound                    unknown or foreign id
    ├── StoreUnavailable            the database cannot be reached
    └── ModelError                  model file missing, wrong checksum, bad graph

A TaskFailure's `error_code` is a stable string that clients may branch on; its
message is the human-readable `error_info` and never contains secrets.
"""

from __future__ import annotations


class FacelensError(Exception):
    """Base of every error facelens raises on purpose."""


class TaskFailure(FacelensError):
    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UrlNotAllowed(TaskFailure):
    error_code = "URL_NOT_ALLOWED"


class ImageDownloadFailed(TaskFailure):
    error_code = "IMAGE_DOWNLOAD_FAILED"


class ImageTooLarge(TaskFailure):
    error_code = "IMAGE_TOO_LARGE"


class ImageDecodeFailed(TaskFailure):
    error_code = "IMAGE_DECODE_FAILED"


class ImageFormatUnsupported(TaskFailure):
    error_code = "IMAGE_FORMAT_UNSUPPORTED"


class VideoFailure(TaskFailure):
    """A video task's failure; subclasses carry the stable codes of issue 10."""

    error_code = "VIDEO_DECODE_FAILED"


class VideoFormatUnsupported(VideoFailure):
    error_code = "VIDEO_FORMAT_UNSUPPORTED"


class VideoDecodeFailed(VideoFailure):
    error_code = "VIDEO_DECODE_FAILED"


class VideoTooLong(VideoFailure):
    error_code = "VIDEO_TOO_LONG"


class VideoTooLarge(VideoFailure):
    error_code = "VIDEO_TOO_LARGE"


class NoVideoStream(VideoFailure):
    error_code = "NO_VIDEO_STREAM"


class VideoDownloadFailed(VideoFailure):
    error_code = "VIDEO_DOWNLOAD_FAILED"


class InternalTaskError(TaskFailure):
    error_code = "INTERNAL_ERROR"


class InsufficientCredits(FacelensError):
    def __init__(self, needed: int, balance: int | None = None) -> None:
        super().__init__(f"insufficient credits: {needed} needed")
        self.needed = needed
        self.balance = balance


class InvalidKey(FacelensError):
    pass


class NotFound(FacelensError):
    pass


class StoreUnavailable(FacelensError):
    pass


class ModelError(FacelensError):
    pass


class InvalidParameter(FacelensError):
    """A request field is wrong (API code 100010); the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid parameter {field}: {problem}")
        self.field = field
        self.problem = problem
