"""Provider and webhook settings: credentials from the environment or files (never in
an error or a repr), option checks, the ``[webhooks]`` section."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings, SettingsError, settings_from_mapping
from providers.base import Outcome, ProviderConfigError
from providers.registry import build_provider
from tests.conftest import base_config, deep_merge
from tests.providers.conftest import SMS
from tests.providers.fake_cn import ALI_ID, ALI_SECRET, TC_ID, TC_KEY, FakeAliyun, FakeTencent


def settings(tmp_path: Path, env: dict[str, str] | None = None, **over: Any) -> Settings:
    return settings_from_mapping(deep_merge(base_config(), over), base_dir=tmp_path, env=env)


def test_credentials_from_env_and_files_stay_masked(tmp_path: Path) -> None:
    (tmp_path / "tc.key").write_text("file-secret-key\n")
    s = settings(
        tmp_path, env={"TC_ID": "env-secret-id"},
        providers={"tc": {"type": "tencent", "secret_id": "env:TC_ID",
                          "secret_key": "file:tc.key", "sdk_app_id": "1400000000"}},
        routes=[{"providers": ["tc"]}],
    )  # fmt: skip
    conf = s.providers["tc"]
    assert "env-secret-id" not in repr(conf) and "file-secret-key" not in repr(conf)
    tc = build_provider("tc", conf.type, conf.options, base_dir=tmp_path)
    assert (tc.secret_id, tc._secret_key) == ("env-secret-id", "file-secret-key")
    assert "secret" not in repr(tc)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"secret_key": "k", "sdk_app_id": "1"}, "secret_id"),
     ({"secret_id": "i", "secret_key": "k", "sdk_app_id": "1", "colour": "red"}, "colour"),
     ({"secret_id": "i", "secret_key": "k", "sdk_app_id": "1", "endpoint": "ftp://x"},
      "endpoint"),
     ({"secret_id": "i", "secret_key": "k", "sdk_app_id": "1", "timeout": 0}, "timeout"),
     ({"secret_id": "i", "secret_key": "k", "sdk_app_id": "1",
       "callback_networks": ["10.0.0.0/33"]}, "callback_networks")],
)  # fmt: skip
def test_bad_options_name_the_key_not_the_value(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProviderConfigError, match=message) as caught:
        build_provider("tc", "tencent", options, base_dir=tmp_path)
    assert "'k'" not in str(caught.value)


def test_aliyun_signature_choice(tmp_path: Path) -> None:
    opts = {"access_key_id": ALI_ID, "access_key_secret": ALI_SECRET}
    with pytest.raises(ProviderConfigError, match="signature"):
        build_provider("a", "aliyun", {**opts, "signature": "v9"}, base_dir=tmp_path)


async def test_sign_name_option_and_a_body_without_one(fakes: Any, adapters: Any) -> None:
    ali, tc = await fakes(FakeAliyun()), await fakes(FakeTencent())
    unsigned = replace(SMS, body="您的验证码是123456，5分钟内有效。")
    a = await adapters("aliyun", {"endpoint": ali.url, "access_key_id": ALI_ID,
                                  "access_key_secret": ALI_SECRET})  # fmt: skip
    assert (await a.send(unsigned)).code == "no_sign_name"
    named = await adapters("aliyun", {"endpoint": ali.url, "access_key_id": ALI_ID,
                                      "access_key_secret": ALI_SECRET, "sign_name": "安心"},
                           name="b")  # fmt: skip
    assert (await named.send(unsigned)).outcome is Outcome.SENT
    assert ali.received[-1]["SignName"] == "安心"
    t = await adapters("tencent", {"endpoint": tc.url, "secret_id": TC_ID, "secret_key": TC_KEY,
                                   "sdk_app_id": "1", "sign_name": "安心"})  # fmt: skip
    assert (await t.send(unsigned)).outcome is Outcome.SENT
    assert tc.received[-1]["SignName"] == "安心"


def test_webhook_settings(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    s = make_settings(webhooks={"allow_networks": ["127.0.0.0/8"], "ca_file": "ca.pem",
                                "timeout": 2, "max_attempts": 3, "backoff_base": 0.5})  # fmt: skip
    assert s.webhooks.allow_networks == ("127.0.0.0/8",) and s.webhooks.timeout == 2.0
    assert s.webhooks.ca_file == s.base_dir / "ca.pem"
    assert make_settings().webhooks.allow_networks == ()
    for bad in ({"allow_networks": "127.0.0.1"}, {"allow_networks": ["nope"]},
                {"max_attempts": 0}, {"timeout": 99}, {"colour": 1}):  # fmt: skip
        with pytest.raises(SettingsError, match="webhooks"):
            make_settings(webhooks=bad)


def test_countries_and_retry_ambiguous_options(tmp_path: Path) -> None:
    from providers.registry import provider_limits

    opts = {"secret_id": "i", "secret_key": "k", "sdk_app_id": "1", "countries": ["CN"]}
    tc = build_provider("tc", "tencent", {**opts, "retry_ambiguous": True}, base_dir=tmp_path)
    assert tc.capabilities.countries == frozenset({"CN"}) and not tc.capabilities.free_text
    assert provider_limits("tc", {"retry_ambiguous": True}).retry_ambiguous
    with pytest.raises(ProviderConfigError, match="countries"):
        build_provider("tc", "tencent", {**opts, "countries": ["china"]}, base_dir=tmp_path)
    with pytest.raises(ProviderConfigError, match="retry_ambiguous"):
        provider_limits("tc", {"retry_ambiguous": "yes"})
