"""roomd's configuration: one TOML file in, validated frozen ``Settings`` out.

``load_config`` for the daemon, ``check_config`` for ``roomd config check``. Every problem is one
line, ``config PATH: KEY.PATH: what is wrong (what was found) (line N)``, and all of them are
reported at once. Secrets are read at load time and held only in ``Secret``.
See ``config/roomd.example.toml`` for every key.
"""

from roomd.config._load import check_config, load_config
from roomd.config._problems import ConfigError
from roomd.config._secret import Secret
from roomd.config._settings import (
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_GRAPH_BASE_URL,
    DEFAULT_HYBRID_SCOPE,
    DEFAULT_STATE_PATH,
    Conflict,
    Direction,
    GraphCertificate,
    GraphSettings,
    HttpSettings,
    HybridSettings,
    LogLevel,
    LogSettings,
    RoomSettings,
    Settings,
    StateSettings,
    SyncSettings,
)

__all__ = [
    "DEFAULT_AUTHORITY_HOST",
    "DEFAULT_GRAPH_BASE_URL",
    "DEFAULT_HYBRID_SCOPE",
    "DEFAULT_STATE_PATH",
    "ConfigError",
    "Conflict",
    "Direction",
    "GraphCertificate",
    "GraphSettings",
    "HttpSettings",
    "HybridSettings",
    "LogLevel",
    "LogSettings",
    "RoomSettings",
    "Secret",
    "Settings",
    "StateSettings",
    "SyncSettings",
    "check_config",
    "load_config",
]
