"""A balena-sdk client pointed at any balena API (balenaCloud, openBalena, or a test fake).

balena-sdk builds its URLs when constructed (from ``balena_host``), so another endpoint means
setting ``api_endpoint``/``pine_endpoint`` and rebuilding the pine client and the models that
captured it. Settings stay in memory: the fleet manager's token is never written to disk.
"""

from __future__ import annotations

from balena import Balena, __version__
from balena.auth import Auth
from balena.logs import Logs
from balena.models import Models
from balena.pine import PineClient

DEFAULT_API_URL = "https://api.balena-cloud.com/"


def connect(token: str, api_url: str = DEFAULT_API_URL) -> Balena:
    """An authenticated SDK talking to ``api_url`` (e.g. ``http://127.0.0.1:8123/``)."""
    if not token:
        raise ValueError("a balena API token is needed (--token or BALENA_API_KEY)")
    if not api_url.startswith(("http://", "https://")):
        raise ValueError(f"API URL {api_url!r} must start with http:// or https://")
    base = api_url.rstrip("/") + "/"
    sdk = Balena({"data_directory": False, "retry_rate_limited_request": True})
    version = str(sdk.settings.get("api_version"))
    sdk.settings.set("api_endpoint", base)
    sdk.settings.set("pine_endpoint", f"{base}{version}/")
    sdk.pine = PineClient(sdk.settings, __version__)
    sdk.auth = Auth(sdk.pine, sdk.settings)
    sdk.logs = Logs(sdk.pine, sdk.settings)
    sdk.models = Models(sdk.pine, sdk.settings)
    sdk.auth.login_with_token(token)
    return sdk
