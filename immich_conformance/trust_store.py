"""The trust store every HTTP client of the suite verifies servers with, loaded once per process.

httpx builds a new SSL context for each client (and for each ``httpx.get``) and reads the whole CA bundle into it:
about 20 ms of CPU every time, even for an ``http://`` URL, and the suite makes thousands of clients (every poll of a
wait condition is one). ``system_trust()`` is that same context, made by httpx's own function with the same
defaults (certifi's bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set), once; clients pass it as ``verify``.
Nothing is trusted beyond what httpx trusts by default.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def system_trust() -> ssl.SSLContext:
    return httpx.create_ssl_context()
