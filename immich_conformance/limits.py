"""The numbers of the contract, defined once.

Cloudflare documents a 100 MB request-body limit on the Free and Pro plans without giving the byte count. We hold
"100 MB" as 100 MiB = 104,857,600 bytes (what nginx's ``client_max_body_size 100m`` means too): a body of exactly that
many bytes is accepted, one byte more is refused with 413, at the edge stand-in and at the origin proxy alike.
"""

MAX_BODY_BYTES = 100 * 1024 * 1024

JWT_HEADER = "Cf-Access-Jwt-Assertion"
ACCESS_COOKIE = "CF_Authorization"
SERVICE_TOKEN_ID_HEADER = "CF-Access-Client-Id"
SERVICE_TOKEN_SECRET_HEADER = "CF-Access-Client-Secret"
