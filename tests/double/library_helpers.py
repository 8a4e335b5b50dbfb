"""Accounts and assets for the library tests: users made by the admin through the API, uploads, auth headers."""

from __future__ import annotations

import itertools
import os
import uuid

import httpx
from double_harness import Account, upload_form

PASSWORD = "another horse battery staple"
_numbers = itertools.count(1)


def key(account: Account) -> dict[str, str]:
    return {"x-api-key": account.api_key}


def new_user(api: httpx.Client, admin: Account, name: str = "Other") -> Account:
    """A user made by the admin (``POST /api/admin/users``), logged in, with an API key of their own."""
    email = f"user-{next(_numbers)}-{uuid.uuid4().hex[:6]}@example.com"
    made = api.post("/api/admin/users", headers=key(admin), json={"email": email, "password": PASSWORD, "name": name})
    assert made.status_code == 201, made.text
    login = api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 201, login.text
    api.cookies.clear()  # the login cookie would otherwise speak for this user on the client's next calls
    token = login.json()["accessToken"]
    created = api.post("/api/api-keys", json={"name": "mine", "permissions": ["all"]},
                       headers={"Authorization": f"Bearer {token}"})
    assert created.status_code == 201, created.text
    return Account(made.json()["id"], email, token, created.json()["secret"])


def upload(api: httpx.Client, account: Account, data: bytes | None = None, name: str = "photo.jpg") -> str:
    response = api.post("/api/assets", headers=key(account), **upload_form(data or os.urandom(4096), name=name))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
