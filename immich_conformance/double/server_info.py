"""The unauthenticated server descriptions: features and config, with Immich's default system configuration."""

from __future__ import annotations

from typing import Any

FEATURES: dict[str, bool] = {
    "smartSearch": True,
    "facialRecognition": True,
    "duplicateDetection": True,
    "map": True,
    "reverseGeocoding": True,
    "importFaces": False,
    "sidecar": True,
    "search": True,
    "trash": True,
    "oauth": False,
    "oauthAutoLaunch": False,
    "ocr": True,
    "passwordLogin": True,
    "configFile": False,
    "email": False,
    "realtimeTranscoding": False,
}


def config(*, is_initialized: bool, is_onboarded: bool) -> dict[str, Any]:
    return {
        "loginPageMessage": "",
        "trashDays": 30,
        "userDeleteDelay": 7,
        "oauthButtonText": "Login with OAuth",
        "isInitialized": is_initialized,
        "isOnboarded": is_onboarded,
        "externalDomain": "",
        "publicUsers": True,
        "mapDarkStyleUrl": "https://tiles.immich.cloud/v1/style/dark.json",
        "mapLightStyleUrl": "https://tiles.immich.cloud/v1/style/light.json",
        "maintenanceMode": False,
        "minFaces": 3,
    }


WELL_KNOWN = {"api": {"endpoint": "/api"}}
