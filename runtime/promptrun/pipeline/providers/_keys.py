"""Missing or refused provider credentials: an error that says what to set, in the SDK's class.

Decision: the SDK's exception is re-raised as an instance of a subclass of *its own class*
(made once per class) that also derives from :class:`ProviderKeyError`, with the original
chained as ``__cause__``. So ``except openai.AuthenticationError``, ``except TypeError`` (the
anthropic SDK's missing-key error) and ``except botocore.exceptions.NoCredentialsError`` keep
working, the attributes (``status_code``, ``response``, ``body``) are still there, and
``str(exc)`` (what logs, notebooks and the request log show) leads with what to do. A note
(``add_note``) would keep the class too, but ``str(exc)`` would not show it. When an SDK class
cannot be subclassed or built that way, the original gets the message as a note instead.
"""

from __future__ import annotations

import os
from typing import Any

from promptrun.pipeline.providers._base import KeyProblem
from promptrun.pipeline.providers._table import ProviderInfo

__all__ = ["ProviderKeyError", "explain_key_problem"]

_MAX_ORIGINAL = 500


class ProviderKeyError(Exception):
    """Mixed into an SDK's own exception class when a provider's credentials are missing or
    refused; the message names the provider, the template and the variable to set."""


_explained: dict[type[BaseException], type[BaseException]] = {}


def _explained_class(cls: type[BaseException]) -> type[BaseException] | None:
    sub = _explained.get(cls)
    if sub is None:
        try:
            sub = type(
                cls.__name__,
                (cls, ProviderKeyError),
                {
                    "__module__": cls.__module__,
                    "__qualname__": cls.__qualname__,
                    "__reduce__": _reduce,
                },
            )
        except TypeError:  # a final or layout-incompatible class: fall back to a note
            return None
        _explained[cls] = sub
    return sub


def _reduce(self: BaseException) -> tuple[Any, ...]:
    # Pickled by the SDK class it extends, which pickle can find by name.
    base = next(c for c in type(self).__mro__[1:] if c is not ProviderKeyError)
    return (_rebuild, (base, self.args, dict(self.__dict__)))


def _rebuild(base: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    sub = _explained_class(base) or base
    exc = sub.__new__(sub)
    exc.args = args
    exc.__dict__.update(state)
    return exc


def message_for(problem: KeyProblem, info: ProviderInfo, template: str, original: str) -> str:
    """What went wrong and what to do, then what the SDK said."""
    runs = f"template {template!r} runs on provider {info.name!r}"
    said = original if len(original) <= _MAX_ORIGINAL else original[:_MAX_ORIGINAL] + "..."
    sandbox = (
        f"or, to work offline, point {info.base_var} at `promptrun serve`'s sandbox "
        f"({_local_server()}{info.sandbox_path})"
    )
    var = problem.variable
    watched = info.key_vars if var == info.key_var else (var,)
    unset = not any(os.environ.get(v) for v in watched)
    status = f" (HTTP {problem.status})" if problem.status else ""
    export = info.export if var == info.key_var else f"export {var}=..."
    if problem.kind == "refused" and not unset:
        return (
            f"the {info.name} API refused the credentials{status}: {runs}; check {var} "
            f"and that it belongs to that account. The SDK said: {said}"
        )
    if problem.kind == "refused":
        return (
            f"{var} is not set, and the {info.name} API refused the request{status}: {runs}; "
            f"{export}; {sandbox}. The SDK said: {said}"
        )
    return f"{var} is not set: {runs}; {export}; {sandbox}. The SDK said: {said}"


def _local_server() -> str:
    """The promptrun serve this process logs to, if PROMPTLAYER_BASE_URL names one (not the
    hosted API), else where ``promptrun serve`` listens by default."""
    url = os.environ.get("PROMPTLAYER_BASE_URL", "").strip().rstrip("/")
    if url.startswith(("http://", "https://")) and "promptlayer.com" not in url:
        return url
    return "http://127.0.0.1:8765"


def explain_key_problem(
    exc: BaseException, problem: KeyProblem, info: ProviderInfo, template: str
) -> BaseException:
    """The exception to raise instead of ``exc``: same class family, a message that helps."""
    message = message_for(problem, info, template or "?", str(exc) or type(exc).__name__)
    sub = _explained_class(type(exc))
    if sub is not None:
        try:
            new = sub.__new__(sub)
            new.__dict__.update(getattr(exc, "__dict__", {}))
            new.args = (message,)
            if isinstance(getattr(exc, "message", None), str):
                # openai, anthropic and mistralai (a frozen dataclass) keep one
                object.__setattr__(new, "message", message)
            new.__cause__ = exc
            return new
        except (TypeError, AttributeError):
            pass
    exc.add_note(message)
    return exc
