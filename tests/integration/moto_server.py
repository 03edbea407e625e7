"""moto's S3 server, as the artifact tests run it (`python -m tests.integration.moto_server`,
moto.server's arguments), with one fix to moto's SigV4 check.

moto rebuilds the request's URL from werkzeug's `Request.url`, which percent-decodes the query
(`prefix=trees%2F` arrives as `prefix=trees/`), and signs that: its canonical query then differs
from the one every client signs (boto3's included), so each ListObjects with a prefix is refused
as SignatureDoesNotMatch. Re-encode the query the way SigV4 does before moto signs it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from moto.iam.access_control import IAMRequestBase
from moto.server import main


def _sigv4_query(query: str) -> str:
    pairs = (p.partition("=") for p in query.split("&") if p)
    return "&".join(
        f"{quote(unquote(k), safe='-_.~')}={quote(unquote(v), safe='-_.~')}" for k, _, v in pairs
    )


_create_aws_request = IAMRequestBase._create_aws_request


def _create_aws_request_encoded(self: Any) -> Any:
    path, sep, query = self._path.partition("?")
    if sep:
        self._path = f"{path}?{_sigv4_query(query)}"
    return _create_aws_request(self)


IAMRequestBase._create_aws_request = _create_aws_request_encoded  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
