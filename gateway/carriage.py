"""Can any route carry this message? Checked at acceptance, before the filters:
free text goes only to providers that accept free text, a template only to
providers that take free text or hold a code for that template. A message no
route can carry is 422 ``/unroutable`` with the reason; nothing is stored.

At hand-off the dispatcher asks :func:`template_code` whether a template-only provider
can take a message, and builds what it hands over with :func:`outbound_sms`.

The client's ``callback_url`` gets its first SSRF check here too (https, no
credentials, no loopback/private/metadata literal); names are checked again,
against the addresses they resolve to, when a webhook is delivered.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from config.settings import Settings, TemplateSettings
from gateway.errors import Invalid, Problem
from gateway.models import Message
from gateway.schemas import SendRequest
from gateway.webhooks import UnsafeCallbackUrl, check_callback_url
from providers.base import OutboundSms, Provider
from providers.sms_fields import ordered_params, render


class Unroutable(Problem):
    status, slug, title = 422, "unroutable", "No route can carry this message"


def check_carriable(
    settings: Settings, providers: Mapping[str, Provider], send: SendRequest, client_id: str
) -> None:
    route = next(
        (r for r in settings.routes
         if r.matches(country=send.region, purpose=send.purpose, client=client_id)),
        None,
    )  # fmt: skip
    if route is None:
        raise Unroutable(f"no route matches country {send.region} and purpose {send.purpose}")
    names = [n for n in route.providers if n in providers and _reaches(providers[n], send.region)]
    if not names:
        raise Unroutable(f"no provider on the matching route reaches {send.region}")
    free_text = [n for n in names if providers[n].capabilities.free_text]
    if send.template is None:
        if not free_text:
            raise Unroutable(
                "free text, but every provider on the route sends approved templates only"
                f" ({', '.join(names)}): send a template with params"
            )
        return
    template = settings.templates.get(send.template)
    coded = [n for n in names if template is not None and n in template.codes]
    if not free_text and not coded:
        raise Unroutable(
            f"template {send.template} has no code for any provider on the route"
            f" ({', '.join(names)})"
        )


def _reaches(provider: Provider, region: str) -> bool:
    countries = provider.capabilities.countries
    return countries is None or region in countries


def check_callback(settings: Settings, send: SendRequest) -> None:
    if send.callback_url is None:
        return
    allow = [ipaddress.ip_network(n, strict=False) for n in settings.webhooks.allow_networks]
    try:
        check_callback_url(send.callback_url, allow)
    except UnsafeCallbackUrl as exc:
        raise Invalid(errors=[{"field": "callback_url", "message": str(exc)}]) from None


def template_code(
    templates: Mapping[str, TemplateSettings], provider: str, message: Message
) -> str | None:
    """The provider's code for the message's template, when the filters left the
    rendered template intact in the body (a masked parameter must not reach a
    provider that renders the raw parameters itself)."""
    tpl = templates.get(message.template or "")
    if tpl is None or provider not in tpl.codes:
        return None
    rendered = render(tpl.text, message.params or {})
    return tpl.codes[provider] if rendered is not None and rendered in message.body else None


def outbound_sms(
    templates: Mapping[str, TemplateSettings], provider: str, message: Message
) -> OutboundSms:
    """What one provider is handed: the final body, and for a template message the
    provider's template code and the params in placeholder order."""
    tpl = templates.get(message.template or "")
    return OutboundSms(
        message_id=message.id,
        to=message.to,
        body=message.body,
        purpose=message.purpose,
        client_id=message.client_id,
        template=message.template,
        template_code=template_code(templates, provider, message),
        params=ordered_params(tpl.text if tpl else None, message.params or {}),
    )
