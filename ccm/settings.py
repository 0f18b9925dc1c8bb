"""Settings: defaults from ``config/defaults.toml``, a file named in ``CCM_CONFIG``, then
``CCM_*`` environment variables, then the mapping a caller passes (tests do).

Every layer is checked against the defaults: an unknown section or key is an error naming
it, so a typo fails at start and not in the middle of a run.
"""
from __future__ import annotations

import copy
import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

# What ``ccm customers erase`` may keep by ``[erasure] retain`` (``ccm.feedback.erase_files``).
RETAINABLE = ("archive", "print", "email", "sms", "inbox", "webhook", "rejects")
DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config" / "defaults.toml"


class SettingsError(ValueError):
    """Bad configuration: the message names the file, section and key."""


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(value: str, like: Any, where: str) -> Any:
    """Turn an environment string into the type of the default it replaces."""
    if isinstance(like, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{where}: expected true or false, got {value!r}")
    if isinstance(like, int):
        try:
            return int(value)
        except ValueError:
            raise SettingsError(f"{where}: expected a whole number, got {value!r}") from None
    if isinstance(like, list):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _merge(base: dict, layer: Mapping[str, Any], source: str) -> None:
    for section, values in layer.items():
        if section not in base:
            raise SettingsError(f"{source}: unknown section [{section}]{_suggest(section, list(base))}")
        if not isinstance(values, Mapping):
            raise SettingsError(f"{source}: [{section}] must be a table")
        for key, value in values.items():
            if key not in base[section]:
                known = list(base[section])
                raise SettingsError(f"{source}: unknown key {section}.{key}{_suggest(key, known)}")
            base[section][key] = value


def _env_layer(environ: Mapping[str, str], defaults: dict) -> dict:
    layer: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.startswith("CCM_") or name == "CCM_CONFIG":
            continue
        rest = name[4:].lower()
        section, _, key = rest.partition("__")
        if not key:
            section, key = "ccm", rest
        if section not in defaults or key not in defaults[section]:
            raise SettingsError(f"environment variable {name}: no such setting{_suggest(rest, _flat_names(defaults))}")
        layer.setdefault(section, {})[key] = _coerce(value, defaults[section][key], name)
    return layer


def _flat_names(defaults: dict) -> list[str]:
    return [key if section == "ccm" else f"{section}__{key}" for section in defaults for key in defaults[section]]


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict:
    """Return the effective settings as a nested dict (sections of keys)."""
    environ = os.environ if environ is None else environ
    with DEFAULTS_FILE.open("rb") as fh:
        settings = tomllib.load(fh)
    defaults = copy.deepcopy(settings)
    config_file = environ.get("CCM_CONFIG")
    if config_file:
        try:
            with open(config_file, "rb") as fh:
                layer = tomllib.load(fh)
        except OSError as exc:
            raise SettingsError(f"CCM_CONFIG={config_file}: cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"CCM_CONFIG={config_file}: {exc}") from None
        _merge(settings, layer, config_file)
    _merge(settings, _env_layer(environ, defaults), "environment")
    if overrides:
        _merge(settings, overrides, "settings passed by the caller")
    _check_values(settings)
    return settings


def _check_values(settings: dict) -> None:
    """Values whose type the TOML defaults cannot express: decimal amounts."""
    from decimal import Decimal, InvalidOperation

    from ccm.delivery_settings import Cap, QuietHours, check_spec

    try:
        QuietHours(settings["delivery"]["quiet_hours"])
    except ValueError as exc:
        raise SettingsError(f"delivery.quiet_hours: {exc}") from None
    _check_retries(settings)

    try:
        Cap.parse(settings["delivery"]["marketing_cap"])
    except ValueError as exc:
        raise SettingsError(f"delivery.{exc}") from None

    for kind, spec in settings["limits"].items():
        if kind != "storage" and spec:
            try:
                check_spec(kind, spec)
            except ValueError as exc:
                raise SettingsError(str(exc)) from None
    _check_channels(settings["channels"])
    unknown = sorted(set(settings["feedback"]["receipt_channels"]) - set(settings["channels"]))
    if unknown:
        raise SettingsError(f"feedback.receipt_channels: no such channel {unknown[0]!r} (one of: {', '.join(settings['channels'])})")
    unknown = sorted(set(settings["erasure"]["retain"]) - set(RETAINABLE))
    if unknown:
        raise SettingsError(f"erasure.retain: no such kind {unknown[0]!r} (one of: {', '.join(RETAINABLE)})")
    for key, value in settings["costs"].items():
        if key == "currency":
            continue
        try:
            if not Decimal(str(value)).is_finite() or Decimal(str(value)) < 0:
                raise InvalidOperation
        except InvalidOperation:
            raise SettingsError(f"costs.{key}: expected a decimal amount such as \"0.60\", got {value!r}") from None


def configured_channels(settings: dict) -> dict[str, str]:
    """Channel kind -> URL of the channels set up. The inbox and a webhook are optional (an
    empty URL): a channel policy that names one not set up cannot start a run."""
    return {kind: url for kind, url in settings["channels"].items() if url or kind in ("email", "sms", "print")}


def _check_channels(channels: dict) -> None:
    """Every channel URL parses and names an adapter that takes it (``smtp//host`` is an
    error naming the setting, at start, not when the first message goes). Making a channel
    opens nothing: connections and files wait for the first send."""
    from channels import ChannelConfigError, channel_from_url

    for kind, url in configured_channels({"channels": channels}).items():
        try:
            channel_from_url(url)
        except ChannelConfigError as exc:
            raise SettingsError(f"channels.{kind}: {exc}") from None


def _check_retries(settings: dict) -> None:
    """The retry policy's numbers: whole, positive, and a cap no shorter than the first wait."""
    values = {
        "ccm.max_attempts": settings["ccm"]["max_attempts"],
        "delivery.retry_base_seconds": settings["delivery"]["retry_base_seconds"],
        "delivery.retry_cap_seconds": settings["delivery"]["retry_cap_seconds"],
    }
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingsError(f"{name}: expected a whole number of at least 1, got {value!r}")
    if values["delivery.retry_cap_seconds"] < values["delivery.retry_base_seconds"]:
        raise SettingsError(
            f"delivery.retry_cap_seconds ({values['delivery.retry_cap_seconds']}) is shorter than "
            f"delivery.retry_base_seconds ({values['delivery.retry_base_seconds']})"
        )
