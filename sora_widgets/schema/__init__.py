"""Endpoint schemas: what an endpoint accepts, and whether it still runs.

Owns the OpenAPI documents (bundled, cached or fetched), `EndpointSchema` and `Field`, argument
validation, the cross-model argument mapping, fal's Platform API client and the endpoint
catalog with each endpoint's status. May import only the foundations (the flat modules:
`_errors`, `_values`, `_http`, `_home`, `_html` ...); `pricing.py` beside it reads it.
"""

from .documents import (
    DEFAULT_ENDPOINT,
    EndpointSchema,
    EndpointSpec,
    bundled_endpoints,
    cached_endpoints,
    fetch_schema,
    load_schema,
    schema_for,
)
from .fields import UNSET, Field

__all__ = ["DEFAULT_ENDPOINT", "UNSET", "EndpointSchema", "EndpointSpec", "Field", "bundled_endpoints",
           "cached_endpoints", "fetch_schema", "load_schema", "schema_for"]
