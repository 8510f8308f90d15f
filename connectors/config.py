"""Secrets and credentials of each platform: from the environment (which wins) or the channels
file's ``connectors.<platform>`` section; never from code. A platform without its secret is
refused, never run unsigned."""

from __future__ import annotations

import os
from typing import Mapping

from connectors.base import REGISTRY, NotConfigured, StockPusher, WebhookAdapter
from lockstock.catalog import Catalog


def load_adapters() -> None:
    """Import every platform module so it registers its adapter classes."""
    from connectors import amazon, generic, shopee, shopify, tiktok  # noqa: F401


def section(catalog: Catalog, platform: str) -> dict:
    return dict(catalog.connectors.get(platform) or {})


def webhook_secret(cls: type[WebhookAdapter], catalog: Catalog, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    secret = env.get(cls.secret_env) or section(catalog, cls.platform).get("secret") or ""
    if not str(secret).strip():
        raise NotConfigured(f"{cls.platform} webhooks are refused: no secret configured "
                            f"(set {cls.secret_env} or connectors.{cls.platform}.secret in the channels file)")
    return str(secret)


def webhook_adapters(catalog: Catalog, env: Mapping[str, str] | None = None) -> dict[str, WebhookAdapter | NotConfigured]:
    """Per platform: its adapter, or the NotConfigured error its route answers with (503)."""
    load_adapters()
    adapters: dict[str, WebhookAdapter | NotConfigured] = {}
    for platform, cls in sorted(REGISTRY.webhooks.items()):
        try:
            adapters[platform] = cls(catalog, webhook_secret(cls, catalog, env), section(catalog, platform))
        except NotConfigured as exc:
            adapters[platform] = exc
    return adapters


def pusher_credentials(cls: type[StockPusher], catalog: Catalog, env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    settings = section(catalog, cls.platform)
    found, missing = {}, []
    webhook = REGISTRY.webhooks.get(cls.platform)
    for name, variable in cls.credential_env.items():
        value = env.get(variable) or settings.get(name)
        if not value and webhook is not None and variable == webhook.secret_env:
            value = settings.get("secret")  # the one app secret signs both webhooks and API calls
        if value is None or not str(value).strip():
            missing.append(f"{variable} (or connectors.{cls.platform}.{name})")
        else:
            found[name] = str(value)
    if missing:
        raise NotConfigured(f"{cls.platform} stock pushes are off: missing {', '.join(missing)}")
    return found


def stock_pushers(catalog: Catalog, env: Mapping[str, str] | None = None) -> dict[str, StockPusher | NotConfigured]:
    """Per platform that has channels: its pusher, or why it cannot push."""
    load_adapters()
    wanted = {c.platform for c in catalog.channels.values() if not c.store}
    pushers: dict[str, StockPusher | NotConfigured] = {}
    for platform in sorted(wanted):
        cls = REGISTRY.pushers.get(platform)
        if cls is None:
            pushers[platform] = NotConfigured(f"no stock pusher for platform {platform!r}")
            continue
        try:
            pushers[platform] = cls(catalog, section(catalog, platform), pusher_credentials(cls, catalog, env))
        except NotConfigured as exc:
            pushers[platform] = exc
    return pushers
