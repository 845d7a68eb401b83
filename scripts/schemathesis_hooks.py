"""Schemathesis hooks for scripts/schemathesis (loaded via SCHEMATHESIS_HOOKS).

The run authenticates as the node's admin account. `POST /v1/tokens/rotate`
is one of the operations under test, and it does what it says: the token
that called it is revoked and a new one is answered. So the token is read
from a file before each request, and a successful rotation by the current
token writes the new one there: every operation keeps being tested with a
valid token, however often rotation is generated.
"""

import base64
import hashlib
import os
import threading

import schemathesis

TOKEN_FILE = os.environ["ORB_SCHEMATHESIS_TOKEN_FILE"]
_lock = threading.Lock()


def _current():
    with _lock, open(TOKEN_FILE) as f:
        return f.read().strip()


@schemathesis.auth(refresh_interval=None)
class AdminToken:
    def get(self, case, ctx):
        return _current()

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def after_call(context, case, response):
    if case.method.upper() != "POST" or not case.path.endswith("/v1/tokens/rotate"):
        return
    if response.status_code != 200:
        return
    sent = (response.request.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
    new = response.json().get("token")
    with _lock:
        with open(TOKEN_FILE) as f:
            current = f.read().strip()
        if new and sent == current:
            with open(TOKEN_FILE + ".tmp", "w") as f:
                f.write(new)
            os.replace(TOKEN_FILE + ".tmp", TOKEN_FILE)


# Some inputs are checked against the function they name, which no schema
# can describe: a call's parameters are typed by the export's signature
# (GET /v1/functions/{hash} shows it), a component's bytes must be a valid
# component. The document lists, per operation, the error codes this may
# give (`x-orb-checked-against-the-function`). For those operations
# scripts/schemathesis turns the built-in positive_data_acceptance off
# (schemathesis.toml) and this check takes its place: the same rule, except
# that a 400 carrying one of the listed codes is what the contract says.
EXTENSION = "x-orb-checked-against-the-function"
ACCEPTED = {401, 403, 404, 409, 429}

# Rules between fields that a schema cannot state either: the document
# names them per operation (`x-orb-cross-field`: the rule and the codes a
# 400 breaking it carries); each is checked here on the generated case, so
# a 400 is accepted only when the case really breaks the rule.
CROSS_FIELD = "x-orb-cross-field"


def _query_values(case, name):
    v = (case.query or {}).get(name)
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _seeders_out_of_order(case):
    lo, hi = _query_values(case, "min_seeders"), _query_values(case, "max_seeders")
    try:
        return bool(lo and hi and int(lo[-1]) > int(hi[-1]))
    except (TypeError, ValueError):
        return False


def _function_is_not_the_components_hash(case):
    body = case.body if isinstance(case.body, dict) else {}
    fn, comp = body.get("function"), body.get("component")
    if fn is None or comp is None:
        return False
    try:
        data = base64.b64decode(comp + "=" * (-len(comp) % 4), validate=False)
    except Exception:
        return True
    return fn != "sha256:" + hashlib.sha256(data).hexdigest()


def _present(body, name):
    return isinstance(body, dict) and body.get(name) is not None


def _namespace_missing(case):
    body = case.body
    return (_present(body, "set") or _present(body, "write_to")) and not _present(body, "namespace")


def _timezone_without_cron(case):
    return _present(case.body, "timezone") and not _present(case.body, "cron")


RULES = {
    "min_seeders <= max_seeders": _seeders_out_of_order,
    "with component, function is its hash": _function_is_not_the_components_hash,
    "set and write_to need a namespace": _namespace_missing,
    "timezone goes with cron": _timezone_without_cron,
}


def _breaks_a_rule(raw, case, code):
    for entry in raw.get(CROSS_FIELD) or []:
        rule = RULES.get(entry["rule"])
        if rule is None:
            raise AssertionError(f"the document names a cross-field rule this hook does not know: {entry['rule']!r}")
        if code in entry["codes"] and rule(case):
            return True
    return False


@schemathesis.check
def positive_data_acceptance_but_function_checks(ctx, response, case):
    raw = case.operation.definition.raw
    codes = raw.get(EXTENSION)
    meta = case.meta
    if not codes or meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if 200 <= status < 400 or status >= 500 or status in ACCEPTED:
        return None
    code = None
    try:
        code = response.json()["error"]["code"]
    except Exception:
        pass
    if status == 400 and (code in codes or _breaks_a_rule(raw, case, code)):
        return None
    raise AssertionError(
        f"Valid data should have been accepted: got {status} `{code}`; only a 400 with one of "
        f"{', '.join(codes)} (checked against the function) is allowed besides 2xx, 3xx, 401, 403, 404, 409, 429, 5xx"
    )
