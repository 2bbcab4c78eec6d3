"""The Claude proposer: the intent, the language and the corpus catalog to Claude; its answer parsed, checked and
proved; diagnostics and counterexamples sent back for a bounded number of repair rounds.

The answer is a ``submit_policy`` tool call (JSON schema in :mod:`nectar.propose.prompt`); a TOON policy in a text
answer is accepted too. Either way it goes through the real policy parser and the prover.

Failures never surface as tracebacks and never print the API key (messages are scrubbed of it):

======================================================  ====  ==============================================
problem                                                 exit  error
======================================================  ====  ==============================================
no key, key refused (401/403), unknown model (404),     2     :class:`~nectar.errors.NectarError`
request refused (400)
rate limited (429), overloaded (529), server error      3     :class:`ServiceError` (retry later)
(5xx), timeout, network
no usable policy after the last round                   1     :class:`~nectar.errors.CheckFailed`
======================================================  ====  ==============================================
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nectar.corpus.stats import FieldCatalog
from nectar.errors import CheckFailed, NectarError
from nectar.policy import ir
from nectar.propose.common import MustKeepSpec, Proposal, RuleSpec, build_policy, policy_text
from nectar.propose.prompt import TOOL, TOOL_NAME, prompt_sha256, system_prompt, user_message

DEFAULT_MODEL = "claude-sonnet-5-5"  # a current model in the installed SDK's ModelParam list (anthropic 2.13)
MAX_ROUNDS = 3
MAX_TOKENS = 4096
EXIT_SERVICE = 3


class ServiceError(NectarError):
    """The model service could not answer (rate limit, overload, server error, timeout, network): exit 3."""

    exit_code = EXIT_SERVICE


@dataclass(frozen=True, slots=True)
class ClaudeSettings:
    """How to reach Claude. ``api_key`` is never printed; ``base_url`` None means the SDK's default."""

    api_key: str
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    max_retries: int = 2
    timeout: float = 60.0
    rounds: int = MAX_ROUNDS
    max_tokens: int = MAX_TOKENS

    def __repr__(self) -> str:  # never show the key in a traceback or a log line
        return f"ClaudeSettings(model={self.model!r}, base_url={self.base_url!r}, api_key=<hidden>)"


def resolve_model(cli_model: str | None, config_model: str | None, env: Mapping[str, str] | None = None) -> str:
    """The model id: ``--model``, else ``NECTAR_MODEL``, else nectar.toml ``[propose] model``, else the default."""
    env = os.environ if env is None else env
    return cli_model or env.get("NECTAR_MODEL") or config_model or DEFAULT_MODEL


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the prover said about one candidate: passed, and the feedback to send back when it did not."""

    passed: bool
    feedback: str
    report: Any = None


Prover = Callable[[ir.Policy], Verdict]


# --- answers --------------------------------------------------------------------------------------------------


class _Unusable(Exception):
    """The answer holds no policy we can read; the message is the diagnostic sent back."""


def _str(d: Mapping[str, Any], key: str, where: str, required: bool = True) -> str:
    v = d.get(key)
    if v is None and not required:
        return ""
    if not isinstance(v, str) or (required and not v.strip()):
        raise _Unusable(f"{where}: `{key}` must be a non-empty string")
    return v


def policy_from_tool_input(data: Any, aliases: Mapping[str, tuple[str, ...]]) -> tuple[ir.Policy, str, list[str]]:
    """A ``submit_policy`` input to a validated policy, its canonical text and the stated assumptions."""
    if not isinstance(data, dict):
        raise _Unusable("the tool input must be an object")
    rules_in = data.get("rules")
    if not isinstance(rules_in, list) or not rules_in:
        raise _Unusable("`rules` must be a non-empty array of {name, description, match, action, priority}")
    specs, prios = [], []
    for i, r in enumerate(rules_in, 1):
        if not isinstance(r, dict):
            raise _Unusable(f"rules[{i}] must be an object")
        where = f"rules[{i}]"
        desc = _str(r, "description", where, required=False)
        specs.append(RuleSpec(_str(r, "name", where), _str(r, "match", where), _str(r, "action", where), desc))
        p = r.get("priority", 0)
        if isinstance(p, bool) or not isinstance(p, int):
            raise _Unusable(f"{where}: `priority` must be an integer")
        prios.append(p)
    mk = []
    for i, m in enumerate(data.get("must_keep") or [], 1):
        if not isinstance(m, dict):
            raise _Unusable(f"must_keep[{i}] must be an object")
        mk.append(MustKeepSpec(_str(m, "name", f"must_keep[{i}]"), _str(m, "match", f"must_keep[{i}]")))
    budget = data.get("budget_per_second")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0):
        raise _Unusable("`budget_per_second` must be a positive number or null")
    raw_name, raw_desc = data.get("name"), data.get("description")
    name = raw_name if isinstance(raw_name, str) and raw_name.strip() else "proposed"
    text = policy_text(name, specs, raw_desc if isinstance(raw_desc, str) else "", budget, mk, prios)
    policy, canonical = build_policy(text, aliases)
    assumptions = [a for a in data.get("assumptions") or [] if isinstance(a, str)]
    return policy, canonical, assumptions


_FENCE = re.compile(r"```[a-zA-Z]*\n(.*?)```", re.S)


def policy_from_text(text: str, aliases: Mapping[str, tuple[str, ...]]) -> tuple[ir.Policy, str]:
    """A TOON policy found in a text answer (in a code fence, or from ``nectar_policy`` to the end)."""
    blocks = [b for b in _FENCE.findall(text) if "nectar_policy" in b]
    if blocks:
        body = blocks[0]
    elif "nectar_policy" in text:
        body = text[text.index("nectar_policy") :]
    else:
        raise _Unusable(f"the answer has no policy: call the `{TOOL_NAME}` tool with the policy")
    return build_policy(body.strip() + "\n", aliases)


# --- the conversation ---------------------------------------------------------------------------------------


def _blocks(content: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for b in content or []:
        kind = getattr(b, "type", None)
        if kind == "text":
            out.append({"type": "text", "text": b.text})
        elif kind == "tool_use":
            out.append({"type": "tool_use", "id": b.id, "name": b.name, "input": b.input})
    return out


def _scrub(text: str, key: str) -> str:
    return text.replace(key, "<hidden>") if key else text


def _api_error(exc: Exception, settings: ClaudeSettings) -> NectarError:
    import anthropic

    detail = ""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        detail = str(body["error"].get("message", ""))[:200]
    detail = _scrub(detail, settings.api_key)
    tail = f": {detail}" if detail else ""
    retries = f" (after {settings.max_retries} retries)" if settings.max_retries else ""
    if isinstance(exc, (anthropic.AuthenticationError, anthropic.PermissionDeniedError)):
        code = getattr(exc, "status_code", "")
        return NectarError(
            f"the Anthropic API refused the API key ({code}){tail}",
            hint="check ANTHROPIC_API_KEY (it is never printed), or use --provider offline",
        )
    if isinstance(exc, anthropic.NotFoundError):
        return NectarError(
            f"the Anthropic API does not know the model {settings.model!r} (404){tail}",
            hint="pick a model with --model, NECTAR_MODEL or [propose] model in nectar.toml",
        )
    if isinstance(exc, anthropic.RateLimitError):
        return ServiceError(f"rate limited by the Anthropic API (429){retries}{tail}", hint="wait a minute and retry")
    if isinstance(exc, anthropic.OverloadedError):
        return ServiceError(f"the Anthropic API is overloaded (529){retries}{tail}", hint="retry in a few minutes")
    if isinstance(exc, anthropic.APITimeoutError):
        return ServiceError(
            f"the Anthropic API did not answer within {settings.timeout:g} s{retries}",
            hint="retry, or raise --timeout",
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ServiceError("cannot reach the Anthropic API (network error)", hint="check the network or proxy")
    if isinstance(exc, anthropic.InternalServerError):
        code = getattr(exc, "status_code", "5xx")
        return ServiceError(f"the Anthropic API failed with a server error ({code}){retries}{tail}", hint="retry later")
    if isinstance(exc, anthropic.APIStatusError):
        code = getattr(exc, "status_code", "?")
        return NectarError(f"the Anthropic API refused the request ({code}){tail}")
    return ServiceError(f"the Anthropic API call failed: {type(exc).__name__}")


def _client(settings: ClaudeSettings) -> Any:
    import anthropic

    return anthropic.Anthropic(
        api_key=settings.api_key,
        base_url=settings.base_url,
        max_retries=settings.max_retries,
        timeout=settings.timeout,
    )


def propose_claude(
    intent: str,
    catalog: FieldCatalog,
    aliases: Mapping[str, tuple[str, ...]],
    prover: Prover,
    settings: ClaudeSettings,
    current_policy: str | None = None,
    error_definition: str | None = None,
) -> tuple[Proposal, Verdict]:
    """Ask Claude for a policy and repair it until it parses and passes ``prover`` (at most ``settings.rounds``).

    Returns the last usable proposal and its verdict (which may be a failed proof after the last round). Raises
    :class:`NectarError`/:class:`ServiceError` for API problems and :class:`CheckFailed` when no answer was usable.
    """
    import anthropic

    if not settings.api_key:
        raise NectarError("no API key for Claude", hint="set ANTHROPIC_API_KEY, or use --provider offline")
    system = system_prompt()
    first = user_message(intent, catalog, current_policy, error_definition)
    sha = prompt_sha256(settings.model, system, first)
    messages: list[dict[str, Any]] = [{"role": "user", "content": first}]
    client = _client(settings)
    last: tuple[Proposal, Verdict] | None = None
    feedback = ""
    for round_no in range(1, settings.rounds + 1):
        try:
            resp = client.messages.create(
                model=settings.model,
                max_tokens=settings.max_tokens,
                system=system,
                messages=messages,
                tools=[TOOL],
                tool_choice={"type": "tool", "name": TOOL_NAME},
            )
        except anthropic.APIError as exc:
            raise _api_error(exc, settings) from None
        blocks = _blocks(resp.content)
        tool = next((b for b in blocks if b["type"] == "tool_use" and b["name"] == TOOL_NAME), None)
        try:
            if tool is not None:
                policy, text, assumptions = policy_from_tool_input(tool["input"], aliases)
            else:
                joined = "\n".join(b["text"] for b in blocks if b["type"] == "text")
                if resp.stop_reason == "max_tokens" and "nectar_policy" not in joined:
                    raise _Unusable("the answer was cut off (max_tokens); submit a shorter policy")
                policy, text = policy_from_text(joined, aliases)
                assumptions = []
        except _Unusable as exc:
            feedback = f"Your answer could not be used: {exc}"
        except NectarError as exc:
            feedback = "Your policy does not parse or validate:\n" + exc.render()
        else:
            proposal = Proposal(policy, text, "claude", (), tuple(assumptions), settings.model, sha, round_no)
            verdict = prover(policy)
            last = (proposal, verdict)
            if verdict.passed:
                return last
            feedback = "Your policy parses but fails its proof against the corpus:\n" + verdict.feedback
        if round_no == settings.rounds:
            break
        messages.append({"role": "assistant", "content": blocks or [{"type": "text", "text": "(empty)"}]})
        note = feedback + "\n\nSubmit a corrected policy with the submit_policy tool."
        if tool is not None:
            result = {"type": "tool_result", "tool_use_id": tool["id"], "content": note, "is_error": True}
            messages.append({"role": "user", "content": [result]})
        else:
            messages.append({"role": "user", "content": note})
    if last is not None:
        return last
    raise CheckFailed(
        f"Claude gave no usable policy in {settings.rounds} round(s); nothing was written",
        hint=_scrub(feedback.splitlines()[0] if feedback else "", settings.api_key) or None,
    )


def proof_feedback(report: Any, limit: int = 3) -> str:
    """The failed checks of a :class:`~nectar.prove.ProofReport` with a few counterexample traces, as text."""
    lines = []
    for c in report.checks:
        if c.passed:
            continue
        lines.append(f"- check {c.name} FAILED: {c.summary}")
        for ce in c.counterexamples[:limit]:
            lines.append(
                f"  trace {ce.trace_id}: decided by rule {ce.rule or 'none'} (keep={ce.keep}, rate={ce.rate}), "
                f"{ce.spans} spans"
            )
            for v in ce.values[:4]:
                lines.append("    span " + ", ".join(f"{k}={v[k]!r}" for k in sorted(v)))
    return "\n".join(lines) or "the proof failed"


__all__ = [
    "DEFAULT_MODEL",
    "ClaudeSettings",
    "ServiceError",
    "Verdict",
    "policy_from_text",
    "policy_from_tool_input",
    "proof_feedback",
    "propose_claude",
    "resolve_model",
]
