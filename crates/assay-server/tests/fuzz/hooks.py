"""Schemathesis hooks of the API fuzz test (tests/fuzz.rs).

- `no_internal_error`: no 500, nor any 5xx but the three that name a failing upstream: 502 (the source or the
  secrets manager refused), 503 (unavailable) and 504 (it did not answer in time). Generated edits may point a
  seeded datastore at a database that does not exist, after which the source answers with an error, which is
  not Assay's fault; those answers must still carry a JSON `detail` that says so.
- `detail_on_4xx`: every 4xx (and every allowed 5xx) answer is JSON with a non-empty string `detail`.
- `before_call`: keeps the seeded datastores (see fuzz.rs), and keeps every connection the server makes on
  loopback. Generated bodies may name any host or secrets-manager URL; Test Connection, sync and secret
  resolution would then reach out to it, so hosts become 127.0.0.1, URLs point at a closed loopback port, and
  certificate paths (read from disk) are dropped.
"""

import json
import os

import schemathesis

# seeded datastores a DELETE may not remove (it would cascade to every record the other cases use)
KEEP_DATASTORES = {
    int(x) for x in os.environ.get("ASSAY_FUZZ_KEEP_DATASTORES", "").split(",") if x.strip()
}
MISSING_ID = 2**31 - 1

LOOPBACK_URL = "http://127.0.0.1:9/"
URL_KEYS = {"login_url", "secret_url", "uri", "jdbc_url"}
DROPPED_KEYS = {"sslrootcert", "sslcert", "sslkey"}


def _contain(value):
    if isinstance(value, dict):
        for key in list(value):
            if key in DROPPED_KEYS:
                del value[key]
            elif key in ("host", "hostaddr"):
                value[key] = "127.0.0.1"
            elif key in URL_KEYS:
                value[key] = LOOPBACK_URL
            else:
                _contain(value[key])
    elif isinstance(value, list):
        for item in value:
            _contain(item)


@schemathesis.hook
def before_call(context, case, **kwargs):
    _contain(case.body)
    params = case.path_parameters or {}
    if (
        case.method.upper() == "DELETE"
        and case.operation.path == "/api/datastores/{datastore_id}"
        and params.get("datastore_id") in KEEP_DATASTORES
    ):
        params["datastore_id"] = MISSING_ID


UPSTREAM = {502, 503, 504}


@schemathesis.check
def no_internal_error(ctx, response, case):
    """No 500, and no 5xx other than those that name a failing upstream."""
    if response.status_code >= 500 and response.status_code not in UPSTREAM:
        raise AssertionError(f"server error {response.status_code}: {response.content[:300]!r}")
    return None


@schemathesis.check
def detail_on_4xx(ctx, response, case):
    """A 4xx (or an upstream's 5xx) answer must be JSON {"detail": "..."} saying what went wrong."""
    if not (400 <= response.status_code < 500 or response.status_code in UPSTREAM):
        return None
    try:
        body = json.loads(response.content or b"")
    except ValueError:
        raise AssertionError(
            f"{response.status_code} without a JSON body: {response.content[:200]!r}"
        )
    if not isinstance(body, dict) or not isinstance(body.get("detail"), str) or not body["detail"]:
        raise AssertionError(f"{response.status_code} without a 'detail' string: {body!r:.300}")
    return None
