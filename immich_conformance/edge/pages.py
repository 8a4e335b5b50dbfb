"""The pages the edge answers with itself: Cloudflare-style error pages and the Access login page."""

from __future__ import annotations

import html

from aiohttp import web

SERVER = "cloudflare"


def _plain_error(status: int, title: str) -> str:
    # Cloudflare's proxy-level errors (413, for one) are short nginx-style pages signed "cloudflare"
    return (f"<html>\r\n<head><title>{status} {title}</title></head>\r\n<body>\r\n<center><h1>{status} {title}</h1>"
            f"</center>\r\n<hr><center>{SERVER}</center>\r\n</body>\r\n</html>\r\n")


def _cloudflare_error(code: int, title: str, detail: str, ray: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)} | Cloudflare</title></head>\n<body>\n"
        f"<h1>Error {code}</h1>\n<h2>{html.escape(title)}</h2>\n<p>{html.escape(detail)}</p>\n"
        f"<p>Cloudflare Ray ID: <strong>{html.escape(ray.split('-')[0])}</strong></p>\n</body></html>\n"
    )


def _response(status: int, body: str, ray: str, *, close: bool = False) -> web.Response:
    resp = web.Response(status=status, text=body, content_type="text/html", charset="UTF-8")
    resp.headers["Server"] = SERVER
    resp.headers["Cf-Ray"] = ray
    if close:
        resp.force_close()
    return resp


def too_large(ray: str) -> web.Response:
    return _response(413, _plain_error(413, "Request Entity Too Large"), ray, close=True)


def bad_gateway(ray: str) -> web.Response:
    return _response(502, _cloudflare_error(502, "Bad gateway", "The origin could not be reached.", ray), ray)


def origin_timeout(ray: str) -> web.Response:
    return _response(524, _cloudflare_error(524, "A timeout occurred",
                                            "The origin did not answer in time.", ray), ray)


def unknown_host(host: str, ray: str) -> web.Response:
    """A request whose Host is not the application's public hostname."""
    bare = host.rsplit(":", 1)[0].strip("[]") if host else ""
    if not bare or bare.replace(".", "").isdigit() or ":" in bare:
        return _response(403, _cloudflare_error(1003, "Direct IP access not allowed",
                                                "This address serves named hosts only.", ray), ray)
    return _response(530, _cloudflare_error(1016, "Origin DNS error",
                                            f"No application is configured for {host}.", ray), ray)


def access_denied(status: int, reason: str, ray: str) -> web.Response:
    title = "Unauthorized" if status == 401 else "Forbidden"
    return _response(status, _cloudflare_error(status, title, f"Cloudflare Access: {reason}.", ray), ray)


def login_redirect(location: str, ray: str) -> web.Response:
    resp = web.Response(status=302, headers={"Location": location, "Server": SERVER, "Cf-Ray": ray})
    return resp


def login_page(app_host: str, query: dict[str, str]) -> str:
    """The team domain's login page. It offers nothing to sign in with: the sandbox has no identity provider."""
    redirect = query.get("redirect_url", "/")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in ・ Cloudflare Access</title>"
        "</head>\n<body>\n<h1>Sign in</h1>\n"
        f"<p>Sign in to reach <strong>{html.escape(app_host)}</strong>"
        f"{html.escape(redirect)}.</p>\n<p>No identity provider is configured for this team.</p>\n</body></html>\n"
    )
