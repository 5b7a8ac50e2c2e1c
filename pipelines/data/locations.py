"""Locations of shared data: a local path, or a URI that pyarrow filesystems open
(`s3://bucket/cache/<key>`, `gs://...`, `file:///...`).

An S3-compatible store that is not AWS is named by query parameters, which pyarrow and Ray both
understand: `s3://bucket/cache/<key>?endpoint_override=minio:9000&scheme=http`. Credentials
come from the usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or the node's role;
a URI can also carry them as `s3://KEY:SECRET@bucket/...`, which is why URIs are redacted before
they are logged.
"""

from __future__ import annotations

import re

_CREDENTIALS = re.compile(r"(://)[^/@?#]+@")


def is_uri(location: str) -> bool:
    """True for `scheme://...`, False for a plain path."""
    return "://" in location


def join_uri(base: str, *parts: str) -> str:
    """`base` with `parts` appended to its path, keeping a query string at the end:
    join_uri("s3://b/ray?scheme=http", "sweep") == "s3://b/ray/sweep?scheme=http"."""
    path, mark, query = base.partition("?")
    joined = "/".join([path.rstrip("/"), *(p.strip("/") for p in parts)])
    return f"{joined}{mark}{query}"


def redact(location: str) -> str:
    """`location` with any `user:secret@` of a URI replaced by `***@`, safe to log."""
    return _CREDENTIALS.sub(r"\1***@", location)
