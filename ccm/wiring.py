"""The engine's wiring for one process: settings, database and folders.

``Engine.from_settings`` builds it anywhere (CLI, web app, worker processes); the Flask
app keeps one in ``app.extensions["ccm"]``. Its database sessions carry its settings
(``session.info``), for what needs a key derived from the engine's secret (``ccm.keys``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ccm.db import Database
from ccm.keys import SESSION_SETTINGS
from ccm.settings import load_settings


@dataclass
class Engine:
    settings: dict
    db: Database

    def __post_init__(self) -> None:
        self.db.sessions.configure(info={SESSION_SETTINGS: self.settings})

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None = None) -> "Engine":
        resolved = load_settings(settings)
        return cls(settings=resolved, db=Database(resolved["ccm"]["database_url"]))

    @property
    def var_dir(self) -> Path:
        path = Path(self.settings["ccm"]["var_dir"])
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def templates_dir(self) -> Path:
        return Path(self.settings["ccm"]["templates_dir"])

    def close(self) -> None:
        self.db.dispose()
