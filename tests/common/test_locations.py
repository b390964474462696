"""A store's error tells whether waiting may cure it (`LocationError.transient`).

The messages are pyarrow's own, as its S3 filesystem words them; the runs against a real
S3 server that produce them are in tests/experiments/test_object_store.py and
tests/experiments/test_storage_outage.py.
"""

from __future__ import annotations

import pytest

from tunefleet.common.locations import LocationError, translated

URI = "s3://bucket/exp/trials.parquet"
PUT = "When uploading object with key 'exp/trials.parquet' to bucket 'bucket': "


@pytest.mark.parametrize(
    ("message", "transient", "says"),
    [
        (
            PUT + "AWS Error NETWORK_CONNECTION during PutObject operation: curlCode: 7, "
            "Couldn't connect to server",
            True,
            r"cannot reach the object store .*\(AWS Error NETWORK_CONNECTION during PutObject "
            r"operation\); check the endpoint",
        ),
        (
            PUT + "AWS Error NETWORK_CONNECTION during PutObject operation: curlCode: 56, "
            "Failure when receiving data from the peer",
            True,
            r"cannot reach the object store",
        ),
        (
            PUT + "AWS Error SLOW_DOWN during PutObject operation: Please reduce your "
            "request rate.",
            True,
            r"the object store is down or throttling requests \(AWS Error SLOW_DOWN during "
            r"PutObject operation\); try again later\.$",
        ),
        (
            PUT + "AWS Error UNKNOWN (HTTP status 503) during PutObject operation: Unable to "
            "parse ExceptionName: ServiceUnavailable",
            True,
            r"the object store is down or throttling requests \(AWS Error UNKNOWN \(HTTP status 503\) during "
            r"PutObject operation\)",
        ),
        (PUT + "HTTP response code: 500; internal error", True, r"the object store is down"),
        (
            PUT + "AWS Error NO_SUCH_BUCKET during PutObject operation: The specified bucket "
            "does not exist",
            False,
            r"the bucket 'bucket' does not exist\.$",
        ),
        (
            PUT + "AWS Error ACCESS_DENIED during PutObject operation: Access Denied",
            False,
            r"the object store refused access \(AWS Error ACCESS_DENIED during PutObject",
        ),
        (
            PUT + "AWS Error SIGNATURE_DOES_NOT_MATCH during PutObject operation: The request "
            "signature we calculated does not match the signature you provided.",
            False,
            r"the object store refused access \(AWS Error SIGNATURE_DOES_NOT_MATCH",
        ),
        (PUT + "Invalid Parquet file", False, r"When uploading .*: Invalid Parquet file$"),
    ],
)
def test_a_store_error_says_whether_waiting_may_cure_it(
    message: str, transient: bool, says: str
) -> None:
    with pytest.raises(LocationError, match=rf"^{URI}: {says}") as info, translated(URI):
        raise OSError(message)
    assert info.value.transient is transient
    assert info.value.exit_code == (2 if "NO_SUCH_BUCKET" in message else 1)


def test_the_cause_is_the_stores_reason_in_a_few_words() -> None:
    with pytest.raises(LocationError) as info, translated(URI):
        raise OSError(PUT + "AWS Error SLOW_DOWN during PutObject operation: Please reduce.")
    assert info.value.cause == "AWS Error SLOW_DOWN during PutObject operation"


def test_a_missing_file_stays_a_file_not_found_error() -> None:
    with pytest.raises(FileNotFoundError), translated(URI):
        raise FileNotFoundError(URI)
