"""Value generators schemathesis uses for the document's own string formats.

function/openapi.json names two formats no JSON Schema pattern can state:
- `jwt`: a token whose header and claims are base64url JSON objects and whose
  `exp` has not passed (the server checks all three);
- `playground-url`: a URL whose path holds a playground id where the legacy
  handler looked for one.
Loaded by scripts/fuzz (SCHEMATHESIS_HOOKS=fuzz_hooks), so positive test cases
carry values of those formats, and the server accepting them is checked.
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
