"""Is every patch function somewhere a check can see it?

A patch function matched against nothing proves nothing: ``lpc check --patch
cv_wait_common`` on a dump whose frames say ``cv_wait_common+0x77/0xc1 [spl]``
would find the name on no stack (the bare name means vmlinux) and report that
nothing blocks the patch. So before a verdict:

* with a symbol table, a function missing from it is refused
  (:meth:`lpc.patch.Patch.resolve`, with close names suggested);
* without one, a function seen on no stack is refused when the dump shows the
  same name in another object (unless unpatching: a replacement shares its
  original's name), or a close name: the user most likely meant that
  (:class:`PatchNotLocatedError`, exit 3 at the command line);
* otherwise the check may go on, and says plainly that the name was matched
  against nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from lpc.dump import Dump
from lpc.errors import LpcError
from lpc.patch import Patch
from lpc.symbols import close_names

__all__ = ["PatchNotLocatedError", "unseen_functions"]


class PatchNotLocatedError(LpcError, LookupError):
    """A patch function the dump does not show, where it shows something close."""


#: A refusal needs a misspelling, not a relative (schedule / io_schedule is 0.84).
_MISSPELLING = 0.9


def unseen_functions(dump: Dump, patch: Patch, hit: Iterable[int]) -> list[str]:
    """Warnings for the patch functions (by index) not in ``hit``, after refusing
    those the user most likely misnamed (:class:`PatchNotLocatedError`)."""
    seen = set(hit)
    missing = [f for k, f in enumerate(patch.functions) if k not in seen]
    if not missing:
        return []
    named = dump.token_function_ids != Dump.NO_NAME
    pairs = set(zip(dump.token_function_ids[named].tolist(),
                    dump.token_module_ids[named].tolist()))
    on_stacks = {dump.names[f] for f, _ in pairs}
    objects: dict[str, set[str]] = {}
    for f, m in pairs:
        objects.setdefault(dump.names[f], set()).add(
            "vmlinux" if m == Dump.NO_NAME else dump.names[m])
    refusals = []
    for f in missing:
        wanted = f.object or "vmlinux"
        elsewhere = sorted(objects.get(f.name, set()) - {wanted})
        # Unpatching names the replacements, which live in the livepatch module and
        # share their names with the originals in theirs: that is no misnaming.
        if elsewhere and not patch.unpatch:
            specs = " or ".join(f"{o}:{f.name}" if o != "vmlinux" else f.name for o in elsewhere)
            refusals.append(f"{f.spec} is on no stack as {wanted}'s, but the dump shows "
                            f"{f.name} in {', '.join(elsewhere)}: did you mean {specs}?")
            continue
        near = close_names(f.name, on_stacks - {f.name}, cutoff=_MISSPELLING)
        if near:
            refusals.append(f"{f.spec} is on no stack, but the dump shows "
                            f"{', '.join(near)}: did you mean {near[0]}?")
    if refusals:
        raise PatchNotLocatedError("; ".join(refusals))
    names = ", ".join(f.spec for f in missing)
    if not np.any(named):
        return [f"patch function(s) {names}: the dump names no function at all, so they were "
                "matched against nothing and could not be checked"]
    return [f"patch function(s) seen on no stack: {names} (matched by name against every "
            "frame of the dump; without a symbol table a misspelt name cannot be told from an "
            "absent one)"]
