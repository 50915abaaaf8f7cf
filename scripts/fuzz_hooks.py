"""Value generators schemathesis uses for the document's own string formats.

function/openapi.json names two formats no JSON Schema pattern can state:
- `jwt`: a token whose header and claims are base64url JSON objects and whose
  `exp` has not passed (the server checks all three);
- `playground-url`: a URL whose path holds a playground id where the legacy
  handler looked for one.
Loaded by scripts/fuzz (SCHEMATHESIS_HOOKS=fuzz_hooks), so positive test cases
carry values of those formats, and the server accepting them is checked. One
rule across fields (a moral-compass body's primaryMetric is one of its
metrics) is kept by a filter below.
"""

import base64
import json
import time

import schemathesis
from hypothesis import strategies as st

ID = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")


def _segment(value):
    text = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(text).rstrip(b"=").decode()


def _token(sub, lifetime, signature):
    header = _segment({"alg": "RS256", "typ": "JWT"})
    claims = _segment({"sub": sub, "exp": int(time.time()) + lifetime})
    return f"{header}.{claims}.{signature}"


schemathesis.openapi.format(
    "jwt",
    st.builds(
        _token,
        ID,
        st.integers(3600, 10**8),
        st.from_regex(r"\A[A-Za-z0-9_-]{0,86}\Z"),
    ),
)

schemathesis.openapi.format(
    "playground-url",
    st.builds(
        lambda host, kind, playground_id: f"https://{host}.example.org/{kind}/{playground_id}",
        st.from_regex(r"\A[a-z]{1,10}\Z"),
        st.sampled_from(["playground", "playgrounds", "apps"]),
        ID,
    ),
)


@schemathesis.hook
def filter_body(ctx, body):
    """A moral-compass body names its primary metric among its metrics: a
    rule across two fields, which a schema cannot state. Bodies breaking only
    it are not generated (the server's 400 for them is tested in
    function/tests/it/moral_compass.rs)."""
    if isinstance(body, dict) and isinstance(body.get("metrics"), dict):
        primary = body.get("primaryMetric")
        if isinstance(primary, str):
            return primary in body["metrics"]
    return True
