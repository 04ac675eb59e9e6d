"""byLLM's Python library mode through JARVIS: ``@by(llm)`` on a plain Python function.

byLLM's own ``byllm.lib.by`` calls the model directly (``model.invoke``), not through jaclang's
``call_llm`` hook, so the plugin in :mod:`jarvis.integrations.jac` never sees those calls. This
decorator is the drop-in replacement: change one import and every call of the function goes
through the router like a ``by llm()`` call of a ``.jac`` program does (the declared task of
that name, or a task ``<module>.<function>`` with byLLM's answer schema; the program's model
as the teacher when nothing else is configured; the answer in the function's own type)::

    from byllm.lib import Model
    from jarvis.integrations.byllm_lib import by

    llm = Model(model_name="gpt-4o-mini")

    @by(llm)
    def summarize(text: str) -> str: ...

The same opt-outs hold: ``@by(llm(jarvis=False))`` or ``JARVIS_JAC=off`` hands the call back
to byLLM. Call parameters are read when the function is decorated (byLLM's ``llm(...)`` sets
them on the shared model object, so reading them later would let one function's opt-out leak
into another's).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from jarvis.integrations.jac import answer, wanted

__all__ = ["by"]

F = TypeVar("F", bound=Callable[..., Any])


def by(model: Any) -> Callable[[F], F]:
    """``@by(model)``: the function's body is never run; each call is answered through
    JARVIS (or by ``model`` itself when the call opts out)."""
    # .jac modules: untyped
    MTIR: Any = importlib.import_module("byllm.mtir").MTIR
    fetch_mtir: Any = importlib.import_module("byllm.plugin").fetch_mtir

    call_params = dict(getattr(model, "call_params", None) or {})

    def decorate(func: F) -> F:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)  # a wrong call fails here, as in Python
            bound.apply_defaults()
            # byLLM keys positional arguments by index; by name, the task's inputs are named
            # after the parameters (and match a declared task such as create_next_level)
            mt_run = MTIR(
                caller=func,
                args=dict(bound.arguments),
                call_params=dict(call_params),
                ir_info=fetch_mtir(func),
            ).runtime
            if not wanted(mt_run):
                return model.invoke(mt_run=mt_run)
            return answer(model, mt_run)

        return call  # type: ignore[return-value]

    return decorate
