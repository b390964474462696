"""A real S3-compatible object store on 127.0.0.1 for tests: moto's server, with a bucket.

Clients reach it only through the standard AWS environment, as a user of MinIO or another
S3-compatible store would: `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (read by pyarrow,
boto3 and so Ray), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_DEFAULT_REGION`.
The server checks signatures: its first requests create an IAM user and an access key,
after which a request signed with any other key is refused, as a cloud store would refuse it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from tests.support.local_cluster import free_ports

__all__ = ["BUCKET", "ObjectStore", "start_object_store"]

BUCKET = "tunefleet-test"
REGION = "us-east-1"
_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class ObjectStore:
    """A running S3-compatible server and the environment that reaches its bucket.

    Attributes:
        endpoint: `http://127.0.0.1:PORT`.
        bucket: The bucket made for the tests.
        env: The AWS variables a client needs (endpoint, key, secret, region).
    """

    endpoint: str
    bucket: str
    env: dict[str, str]

    def uri(self, *parts: str) -> str:
        """`s3://BUCKET/part/part...`."""
        return "/".join([f"s3://{self.bucket}", *parts])


@contextlib.contextmanager
def start_object_store() -> Iterator[ObjectStore]:
    """Starts moto's S3 server on a free port of 127.0.0.1 with one bucket; stops it on exit."""
    import boto3
    from moto import settings
    from moto.server import ThreadedMotoServer

    port = free_ports(1)[0]
    endpoint = f"http://127.0.0.1:{port}"
    # Unsigned set-up requests: the user, its policy and its key. Every later request
    # must be signed with that key.
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 3
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        setup = {"endpoint_url": endpoint, "region_name": REGION}
        setup |= {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="tunefleet")
        iam.put_user_policy(
            UserName="tunefleet", PolicyName="all", PolicyDocument=json.dumps(_ALLOW_ALL)
        )
        key = iam.create_access_key(UserName="tunefleet")["AccessKey"]
        env = {
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata service here
        }
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=BUCKET)
        yield ObjectStore(endpoint=endpoint, bucket=BUCKET, env=env)
    finally:
        server.stop()
