"""A local stand-in for Cloudflare's edge in front of an Access-protected application reached through a Tunnel.

Run it with ``python -m immich_conformance.edge --config edge.json`` (``--help`` describes the file). What it does, and
the Cloudflare documentation each behaviour follows (developers.cloudflare.com):

* Unknown host: a request whose Host is not the application's hostname never reaches the origin; it gets a Cloudflare
  error page (403 "error 1003" for an IP address, 530 "error 1016" otherwise).
* No credentials: Access checks every request for a valid ``CF_Authorization`` cookie and redirects a visitor without
  one to the team's login page, ``https://<team>/cdn-cgi/access/login/<host>?kid=<AUD>&redirect_url=<path>``
  (cloudflare-one ... http-apps/authorization-cookie/, "How Access works"). The redirect does not depend on the client
  being a browser. The application setting "Return 401 Response for Service Auth policies"
  (``service_auth_401_redirect``, off by default) turns it into a 401. A CORS preflight (OPTIONS) without credentials
  gets 403 (.../authorization-cookie/cors/).
* Service tokens: ``CF-Access-Client-Id`` and ``CF-Access-Client-Secret`` (access-controls/service-credentials/
  service-tokens/). With strict service-token authentication (the default for Zero Trust organizations created on or
  after 2026-10-05, and here) a pair that cannot authenticate, or duplicate or incomplete headers, gets 401, and a
  valid pair is used even when a CF_Authorization cookie is present, without a cookie being handed back. Without
  strict mode a bad pair falls back to the login redirect and a valid one also sets ``CF_Authorization``.
* The application token the origin receives in ``Cf-Access-Jwt-Assertion``: RS256 with the signing key's ``kid`` in the
  header; for a service token the claims are ``type`` "app", ``aud`` (a list with the AUD tag), ``exp``, ``iss``
  (``https://<team>``), ``common_name`` (the Client ID), ``iat`` and an empty ``sub``, exactly the documented set: no
  ``nbf``, no ``email`` (.../authorization-cookie/application-token/).
* Browsers that logged in carry ``CF_Authorization``; a cookie holding this team's application token for this AUD
  (valid signature, ``iss``, ``aud``, ``exp``) passes, and the same token goes to the origin in the header
  (.../validating-json/: "Requests made through a browser will also pass the token as a CF_Authorization cookie").
  When the token names a user the edge also sends ``Cf-Access-Authenticated-User-Email``, as Access does for identity
  logins (a header origins commonly read; the pages above do not list it). The login page issues nothing: the sandbox
  has no identity provider, so tests mint such cookies with the key ring.
* Whatever the client sends in ``Cf-*`` headers (``Cf-Access-Jwt-Assertion`` included) is dropped and the edge sets
  its own, as Cloudflare overwrites the headers it adds: a client cannot inject an assertion. The service-token
  headers are not passed to the origin either (the pages above do not say either way; the stand-in keeps the secret
  away from the origin).
* Signing keys: the JWKS at ``https://<team>/cdn-cgi/access/certs`` (``keys``, ``public_cert``, ``public_certs``),
  served over TLS; keys rotate and the previous key stays published (.../validating-json/, "Access signing keys").
  The key ring is read from a file and read again when it changes, so a rotation saved by another process is used
  at once: the newest key signs, every published key verifies cookies and appears in the JWKS.
* Request bodies: Free and Pro plans accept uploads up to 100 MB and answer 413 above (support/troubleshooting/
  http-status-codes/4xx-client-error/error-413/). The byte count is not documented; the limit here is
  ``immich_conformance.limits.MAX_BODY_BYTES`` (104,857,600: exactly that many bytes pass, one more does not). A
  Content-Length over it is refused before any body byte is read (and before Access is consulted); a chunked body is
  cut as it crosses the limit and the origin connection is aborted, so the origin never sees a complete request.
  ``Expect: 100-continue`` is answered only for a request that is let through. Bodies are streamed, never held whole.
* Headers toward the origin: ``Cf-Connecting-Ip``, ``X-Forwarded-For`` (the client's address appended to any list the
  client sent), ``X-Forwarded-Proto: https`` (overwriting the client's), ``Cf-Ray``, ``Cf-Visitor:
  {"scheme":"https"}``, ``CDN-Loop: cloudflare``; ``X-Real-IP`` is stripped. Toward the client the ``X-Accel-*``
  response headers are removed and ``Cf-Ray`` is added (fundamentals/reference/http-headers/).
* Websockets pass through without extra configuration (network/websockets/): the upgrade is checked by Access like any
  request, the origin handshake carries the assertion, frames flow both ways and closes propagate with their codes.
* The tunnel's side: cloudflared delivers requests to ``origin_url`` with the public Host header; an origin that cannot
  be reached gives 502, one that does not answer within ``origin_read_timeout`` (100 s, Cloudflare's default) 524.

The public listener serves the application only: no status or admin paths. Counters are written to the log.
"""
