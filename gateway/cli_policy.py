"""``lendsms policy check FILE`` and ``lendsms policy explain --pack P TEXT``."""

from __future__ import annotations

import argparse
from pathlib import Path

from config.content import load_content_pack, shipped_content_packs
from config.content_lexicon import ContentPackError
from config.policies import PolicyError, load_pack_file
from config.settings import ATTESTATIONS, PURPOSES
from filters.content import ContentFilter, ContentFinding, MessageContext
from gateway.models import Decision

__all__ = ["add_policy_commands"]


def cmd_check(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        load_pack_file(path)  # name, language, [pii]
        spec = load_content_pack(path)  # [content] and its lexicon folder
        compiled = ContentFilter(spec)
    except (ContentPackError, PolicyError) as exc:
        from gateway.cli import CliError

        raise CliError(str(exc)) from None
    s = spec.structure
    options = [f"max_segments={s.max_segments or 'none'}"]
    if s.signature is not None:
        options.append(f"signature={'required' if s.signature.required else 'optional'}")
    options += [f"{i.rule.rsplit('.', 1)[-1]}={i.missing}" for i in s.instructions]
    print(f"ok: {spec.name} ({spec.language}): {len(spec.rules)} rules in "
          f"{len(spec.categories)} categories, {spec.term_count} terms "
          f"({compiled.lexicon.keys} automaton keys); {', '.join(options)}")  # fmt: skip
    return 0


def _line(text: str, f: ContentFinding) -> str:
    where = "message" if f.start is None else f"[{f.start},{f.end}) «{text[f.start : f.end]}»"
    return f"{f.action:<7}{f.rule:<38}{f.category:<16}{where}"


def cmd_explain(args: argparse.Namespace) -> int:
    from gateway.cli import CliError
    from gateway.stages.content import shipped_filters

    filters = shipped_filters()
    if args.pack not in filters:
        raise CliError(f"--pack must be one of {', '.join(shipped_content_packs())}")
    ctx = MessageContext(
        purpose=args.purpose,
        role=args.role,
        region=args.region,
        signatures=tuple(args.signature or ()),
        link_domains=tuple(args.link_domain or ()),
        attests=frozenset(args.attest or ()),
    )
    text: str = args.text
    result = filters[args.pack].check(text, ctx)
    pii = _pii_findings(text, args.pack)
    for f in result.findings:
        print(_line(text, f))
    for f in result.allowed:
        print(f"{'allow':<7}{f.rule:<38}{f.category:<16}[{f.start},{f.end}) "
              f"«{text[f.start : f.end]}» ({f.allowed})")  # fmt: skip
    for action, rule, start, end in pii:
        print(f"{action:<7}{rule:<38}{'pii':<16}[{start},{end})")
    if result.body is not None:
        print(f"body: {result.body}")
    decision = result.decision or ("block" if any(p[0] == "block" for p in pii) else None)
    print(f"decision: {decision or Decision.QUEUE}")
    return 0


def _pii_findings(text: str, pack: str) -> list[tuple[str, str, int | None, int | None]]:
    """The PII stage's findings (offsets only: never echo a value)."""
    from gateway.stages.pii import PiiStage

    result = PiiStage().evaluate(text, pack)
    return [(str(f.action), f.rule, f.start, f.end) for f in result.findings]


def add_policy_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser("policy", help="validate and try out policy packs")
    psub = policy.add_subparsers(dest="action", required=True, metavar="ACTION")
    sp = psub.add_parser(
        "check",
        help="validate a pack file",
        description="Validate a policy pack (name, language, [pii], [content] and its lexicon "
        "folder); a problem is one line naming the file, the line and the reason.",
    )
    sp.add_argument("file", metavar="FILE", help="a pack file, e.g. config/policies/us-fdcpa.toml")
    sp.set_defaults(func=cmd_check)
    sp = psub.add_parser(
        "explain",
        help="print a text's findings and the decision under a pack",
        description="Run the content (and PII) rules of a shipped pack over TEXT.",
    )
    sp.add_argument("--pack", required=True, metavar="P", help="a shipped pack name")
    sp.add_argument("--purpose", default="overdue_notice", choices=PURPOSES)
    sp.add_argument("--role", default="borrower", choices=("borrower", "contact"))
    sp.add_argument("--region", metavar="CC", help="destination region (segment counting)")
    sp.add_argument("--signature", action="append", metavar="NAME", help="a registered signature")
    sp.add_argument("--link-domain", action="append", metavar="DOMAIN", help="an allowed domain")
    sp.add_argument("--attest", action="append", choices=ATTESTATIONS,
                    help="as if the text came from a template attesting this")  # fmt: skip
    sp.add_argument("text", metavar="TEXT")
    sp.set_defaults(func=cmd_explain)
