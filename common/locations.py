"""Where an experiment's files are: a local folder or a folder on an object store.

    loc = locate("s3://bucket/results/quickstart")     # or "results/quickstart", gs://, abfs://
    trials = loc / "trials.parquet"
    pd.read_parquet(trials.path, filesystem=trials.filesystem)

Every command and API that takes an experiment folder goes through `locate`, so a URI works
wherever a folder does. Object stores are reached through pyarrow's filesystems, configured
by the standard environment (for S3 and S3-compatible stores such as MinIO:
`AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`).
Failures become a `LocationError` whose one line names the location and the cause (missing
bucket, refused credentials, unreachable endpoint, a store that is down or throttling) and
never holds a credential; `LocationError.transient` tells the failures that waiting may cure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyarrow import fs as pafs

from tunefleet.common.errors import TunefleetError

__all__ = ["Location", "LocationError", "is_uri", "locate", "translated"]

# Variables whose values must never appear in a message.
_SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
)
# Words in pyarrow's messages (S3, GCS, Azure) that tell why a request failed.
_DENIED = (
    "ACCESS_DENIED",
    "AccessDenied",
    "INVALID_ACCESS_KEY_ID",
    "InvalidAccessKeyId",
    "SIGNATURE_DOES_NOT_MATCH",
    "SignatureDoesNotMatch",
    "HTTP status 403",
    "PERMISSION_DENIED",
    "AuthorizationFailure",
    "Unauthorized",
)
_UNREACHABLE = (
    "NETWORK_CONNECTION",
    "Could not connect",
    "Couldn't connect",
    "curlCode",
    "Connection refused",
    "timed out",
    "UNAVAILABLE",
    "resolve host",
    "Connection reset",
    "Empty reply",
)
# A store that answers but is down, overloaded or throttling: HTTP 5xx, SlowDown.
_BUSY = (
    "SLOW_DOWN",
    "SlowDown",
    "THROTTLING",
    "Throttling",
    "SERVICE_UNAVAILABLE",
    "ServiceUnavailable",
    "INTERNAL_FAILURE",
    "InternalError",
    "REQUEST_TIMEOUT",
    "RequestTimeout",
    "RESOURCE_EXHAUSTED",
)
_SERVER_ERROR = re.compile(r"HTTP (?:status|response code):? 5\d\d")


class LocationError(TunefleetError, ValueError):
    """A folder or URI that cannot be used: the message names it and says why.

    `exit_code` is 2 for a location given wrong (unknown scheme, credentials in the URI,
    missing bucket) and 1 for a store that refused or could not be reached.

    Attributes:
        transient: The store could not be reached, or was down or throttling: the same
            request may succeed later. Refused credentials, a missing bucket or an
            unknown error are not transient.
        cause: The store's reason in a few words (`AWS Error SLOW_DOWN during PutObject
            operation`), or the message when there is none.
    """

    def __init__(
        self, message: str, *, exit_code: int = 2, transient: bool = False, cause: str = ""
    ) -> None:
        super().__init__(_scrub(message))
        self.exit_code = exit_code
        self.transient = transient
        self.cause = _scrub(cause) or str(self)


def is_uri(where: str | os.PathLike[str]) -> bool:
    """Whether `where` names an object store (`s3://...`), not a local path (`file://`
    counts as local)."""
    text = os.fspath(where)
    return "://" in text and not text.startswith("file://")


@dataclass(frozen=True)
class Location:
    """A file or folder on a pyarrow filesystem.

    Attributes:
        uri: How to show it: an absolute local path, or the URI (no trailing `/`).
        filesystem: The pyarrow filesystem that holds it.
        path: Its path on that filesystem.
    """

    uri: str
    filesystem: pafs.FileSystem
    path: str

    def __str__(self) -> str:
        return self.uri

    def __truediv__(self, name: str) -> Location:
        return Location(
            uri=f"{self.uri}/{name}", filesystem=self.filesystem, path=f"{self.path}/{name}"
        )

    @property
    def remote(self) -> bool:
        """Whether it is on an object store."""
        return not isinstance(self.filesystem, pafs.LocalFileSystem)

    @property
    def name(self) -> str:
        """The last part of the path."""
        return self.path.rstrip("/").rpartition("/")[2]

    @property
    def parent(self) -> Location:
        """The folder that holds it."""
        return Location(
            uri=self.uri.rpartition("/")[0],
            filesystem=self.filesystem,
            path=self.path.rpartition("/")[0],
        )

    @property
    def local_path(self) -> Path | None:
        """The local path, or None on an object store."""
        return None if self.remote else Path(self.path)

    def kind(self) -> pafs.FileType:
        """`FileType.File`, `Directory` or `NotFound` (object stores: a prefix is a folder).

        Raises:
            LocationError: If the store refuses the credentials or cannot be reached.
        """
        with translated(self.uri):
            return self.filesystem.get_file_info(self.path).type

    def is_file(self) -> bool:
        return self.kind() == pafs.FileType.File

    def is_dir(self) -> bool:
        return self.kind() == pafs.FileType.Directory

    def exists(self) -> bool:
        return self.kind() != pafs.FileType.NotFound

    def folders(self) -> list[Location]:
        """The folders directly inside, by name."""
        with translated(self.uri):
            infos = self.filesystem.get_file_info(pafs.FileSelector(self.path))
        names = sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)
        return [self / name for name in names]

    def read_bytes(self) -> bytes:
        """The file's content.

        Raises:
            LocationError: If it cannot be read (the message says why).
        """
        with translated(self.uri), self.filesystem.open_input_stream(self.path) as stream:
            return bytes(stream.readall())

    def missing(self) -> str:
        """Why it is not there, for a message: `the bucket X does not exist` when that is
        the reason, else `not found`."""
        if self.remote:
            bucket = self.path.split("/", 1)[0]
            try:
                gone = self.filesystem.get_file_info(bucket).type == pafs.FileType.NotFound
            except OSError:
                gone = False
            if gone:
                return f"the bucket {bucket!r} does not exist"
        return "not found"

    def delete_contents(self) -> None:
        """Removes everything inside the folder (it must exist)."""
        with translated(self.uri):
            self.filesystem.delete_dir_contents(self.path, missing_dir_ok=True)


def locate(where: str | os.PathLike[str]) -> Location:
    """The filesystem and path of a local folder or file, or of any URI pyarrow opens
    (`s3://`, `gs://`, `abfs://`, `hdfs://`, `file://`).

    Local paths are made absolute (`~` expanded). Nothing is read: a location that does
    not exist is returned as it is.

    Raises:
        LocationError: If the URI holds credentials (`s3://KEY:SECRET@bucket/...`, which
            would be printed and saved with the results) or pyarrow does not know its scheme.
    """
    text = os.fspath(where)
    if not is_uri(text):
        path = Path(text.removeprefix("file://")).expanduser().resolve()
        return Location(uri=str(path), filesystem=pafs.LocalFileSystem(), path=path.as_posix())
    scheme, _, rest = text.partition("://")
    if ":" in rest.split("/", 1)[0].rpartition("@")[0]:
        raise LocationError(
            "the URI holds credentials (user:secret@...), which would be printed and saved "
            "with the results; give them through the environment (e.g. AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY) instead."
        )
    uri = text.rstrip("/")
    try:
        filesystem, path = pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        if isinstance(exc, OSError) and _reason(_first_line(exc)) is not None:
            raise _error(uri, exc) from None  # e.g. S3's bucket region lookup failed
        raise LocationError(
            f"{uri}: pyarrow cannot open {scheme}:// URIs ({_first_line(exc)}); give a "
            "local folder or an s3://, gs:// or abfs:// URI."
        ) from None
    return Location(uri=uri, filesystem=filesystem, path=path.rstrip("/"))


@contextmanager
def translated(uri: str) -> Iterator[None]:
    """Turns a filesystem's error inside the block into a one-line `LocationError`
    naming `uri` and the cause; a missing file stays a `FileNotFoundError`."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _error(uri, exc) from None


def _reason(detail: str) -> str | None:
    """Why a store failed, from pyarrow's message: `denied`, `unreachable`, `busy`,
    `no-bucket`, or None when the message does not say."""
    if any(word in detail for word in _DENIED):
        return "denied"
    if any(word in detail for word in _UNREACHABLE):
        return "unreachable"
    if any(word in detail for word in _BUSY) or _SERVER_ERROR.search(detail):
        return "busy"
    if "NO_SUCH_BUCKET" in detail or "NoSuchBucket" in detail:
        return "no-bucket"
    return None


def _error(uri: str, exc: BaseException) -> LocationError:
    detail = _first_line(exc)
    reason, cause = _reason(detail), _short(detail)
    if reason == "denied":
        return LocationError(
            f"{uri}: the object store refused access ({cause}); check the "
            "credentials in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for "
            "S3) and the bucket's permissions.",
            exit_code=1,
            cause=cause,
        )
    if reason == "unreachable":
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        where = f" at {endpoint}" if endpoint and uri.startswith("s3://") else ""
        return LocationError(
            f"{uri}: cannot reach the object store{where} ({cause}); check the "
            "endpoint (AWS_ENDPOINT_URL_S3 for S3-compatible stores) and the network.",
            exit_code=1,
            transient=True,
            cause=cause,
        )
    if reason == "busy":
        return LocationError(
            f"{uri}: the object store is down or throttling requests ({cause}); try again later.",
            exit_code=1,
            transient=True,
            cause=cause,
        )
    if reason == "no-bucket":
        bucket = uri.partition("://")[2].split("/", 1)[0]
        return LocationError(f"{uri}: the bucket {bucket!r} does not exist.", cause=cause)
    return LocationError(f"{uri}: {detail}", exit_code=1, cause=cause)


def _short(detail: str) -> str:
    """`AWS Error ACCESS_DENIED during HeadObject operation` out of pyarrow's message."""
    match = re.search(r"AWS Error [A-Z_]+(?: \(HTTP status \d+\))? during \w+ operation", detail)
    return match[0] if match else detail.rstrip(".")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def _scrub(text: str) -> str:
    """`text` with the values of secret variables blanked out."""
    for variable in _SECRET_VARIABLES:
        value = os.environ.get(variable)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text
