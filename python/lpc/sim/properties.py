"""The seed's guarantees as checkable properties, and what each patch class needs.

Terms. A *configuration* maps every function to the version that runs in one
universe (the original kernel, the kernel with patch 1, ...); the simulator
keeps every configuration the system has had. Two versions are *consistent*
when one configuration holds both. A *patched frame* is an activation of a
function some patch replaces.

Properties, checked on every event of a run (the first violation of each is kept):

``atomicity``
    Function atomicity: every activation runs one version from its first op to
    its return. (Every model here redirects at function entry and never moves
    an activation, so a violation means a simulator bug; a mutant in the tests
    shows the check is live.)
``per_thread``
    Per-thread consistency: at every call into a patched function, all patched
    frames on that task's stack, the callee included, are consistent — one
    configuration holds every one of them. Claimed by LEAVE_PATCHED_SET and
    LEAVE_KERNEL with SWITCH_THREAD or SWITCH_KERNEL.
``call_pair``
    Call-pair consistency: a call into a function whose callers are all patched
    (so the patch may change its prototype) comes from a caller of a consistent
    version. The caller of a sibling (tail) call is the function that made it,
    whose frame is gone — what trivial's ``parent_ip`` cannot see.
``system_wide``
    System-wide consistency: after every event, the patched frames of *all*
    stacks are consistent with one configuration (no two threads run different
    versions at once). Claimed by SWITCH_KERNEL.
``leave_kernel``
    A task's universe changes only while it has no kernel stack (only the
    entry plumbing): in user space or on the user/kernel boundary. Claimed by
    LEAVE_KERNEL.
``completion``
    Completion safety: when the model declares the transition complete, no
    frame on any stack runs a version the target configuration does not hold
    (the replaced code could be freed).
``data_format``
    Shared data: a patched function reads an object in the format of its own
    version (0 for the original code, 1 for the patch). Objects start in the
    original format; the patch's conversion callback converts every object when
    the model completes (inside stop_machine for SWITCH_KERNEL; post_patch for
    the others); any write leaves the writer's format.
``data_shadow``
    Shared data behind a shadow variable (klp_shadow_*): new code attaches a
    shadow to the objects it creates and reads untagged objects the old way,
    so new code is safe on any object; old code does not know shadows and
    breaks the new semantics of an object that has one.

Liveness is not a safety property: it is measured by :mod:`lpc.sim.timed`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from lpc.sim.world import Frame, Kernel, Task
    from lpc.sim.system import Op


class Property(str, Enum):
    ATOMICITY = "atomicity"
    PER_THREAD = "per_thread"
    CALL_PAIR = "call_pair"
    SYSTEM_WIDE = "system_wide"
    LEAVE_KERNEL = "leave_kernel"
    COMPLETION = "completion"
    DATA_FORMAT = "data_format"
    DATA_SHADOW = "data_shadow"


#: What each class of change needs to be safe (function atomicity always).
#:
#: ``body``: old and new are interchangeable in any interleaving (a NULL check).
#: ``prototype``: arguments or return type change between patched callers and callees.
#: ``semantics_moved``: a duty (a check, a lock) moves from a patched function
#: to a patched function it reaches, directly or through unpatched ones: a chain
#: mixing versions does it twice or never.
#: ``shared_data``: the layout or meaning of data shared between threads changes.
#: ``shared_data_shadow``: the same, with the new meaning kept in shadow variables.
PATCH_CLASSES: dict[str, tuple[Property, ...]] = {
    "body": (Property.ATOMICITY,),
    "prototype": (Property.ATOMICITY, Property.CALL_PAIR),
    "semantics_moved": (Property.ATOMICITY, Property.PER_THREAD),
    "shared_data": (Property.ATOMICITY, Property.DATA_FORMAT),
    "shared_data_shadow": (Property.ATOMICITY, Property.DATA_SHADOW),
}


class Violation(NamedTuple):
    prop: Property
    step: int
    time: float
    task: str
    message: str


class Monitor:
    """Watches one simulation; keeps the first violation of every property."""

    def __init__(self, sim: Kernel) -> None:
        self.sim = sim
        self.first: dict[Property, Violation] = {}
        self.counts: dict[Property, int] = {}
        #: Every call into a patched function: (task, function, version).
        self.calls: list[tuple[str, str, int]] = []
        #: New code reading an object no shadow was attached to (handled: the old way).
        self.new_reads_untagged = 0
        self._proto: frozenset[str] = frozenset()
        self._proto_for: frozenset[str] | None = None

    def violate(self, prop: Property, task: str, message: str) -> None:
        self.counts[prop] = self.counts.get(prop, 0) + 1
        if prop not in self.first:
            sim = self.sim
            self.first[prop] = Violation(prop, len(sim.events), sim.time, task, message)
            sim.note(f"   ✗ {prop.value}: {message}")

    # consistency helpers -------------------------------------------------------------------------

    def consistent(self, frames: Iterable[Frame]) -> bool:
        """Is there a configuration that runs every one of these frames' versions?"""
        patched = [(f.fn, f.version) for f in frames if f.fn in self.sim.ever_patched]
        if len(patched) < 2:
            return True
        return any(all(cfg[fn] == v for fn, v in patched) for cfg in self.sim.configs)

    def prototype_changed(self) -> frozenset[str]:
        """Patched functions whose callers are all patched (by any patch so far)."""
        patched = self.sim.ever_patched
        if self._proto_for is not patched:
            system = self.sim.system
            self._proto = frozenset(
                f for f in patched if system.callers(f) and system.callers(f) <= patched
            )
            self._proto_for = patched
        return self._proto

    # hooks from the engine -------------------------------------------------------------------

    def on_op(self, t: Task, f: Frame) -> None:
        if f.version != f.entry_version:
            self.violate(
                Property.ATOMICITY, t.name,
                f"{t.name}: {f.fn} started as {self.sim.vname(f.entry_version)} and continues "
                f"as {self.sim.vname(f.version)}",
            )

    def on_call(self, t: Task, issuer: Frame, callee: Frame, tail: bool) -> None:
        sim = self.sim
        if callee.fn not in sim.ever_patched:
            return
        self.calls.append((t.name, callee.fn, callee.version))
        if callee.fn in self.prototype_changed() and not self.consistent((issuer, callee)):
            how = "tail-calls" if tail else "calls"
            self.violate(
                Property.CALL_PAIR, t.name,
                f"{sim.frame_text(issuer)} {how} {sim.frame_text(callee)}: the arguments are "
                f"built for {sim.vname(issuer.version)} {callee.fn}",
            )
        if not self.consistent(t.stack):
            mixed = [sim.frame_text(f) for f in t.stack if f.fn in sim.ever_patched]
            self.violate(
                Property.PER_THREAD, t.name,
                f"{t.name}'s stack mixes versions: {' → '.join(mixed)}",
            )

    def on_switch(self, t: Task, where: str) -> None:
        if not t.in_user and not t.kernel_stack_empty:
            depth = sum(1 for f in t.stack if not f.root)
            self.violate(
                Property.LEAVE_KERNEL, t.name,
                f"{t.name} switches at {where} with {depth} kernel frame(s) "
                f"({', '.join(self.sim.frame_text(f) for f in t.stack if not f.root)})",
            )

    def on_access(self, t: Task, f: Frame, op: Op) -> None:
        if f.fn not in self.sim.ever_patched:
            return
        obj = self.sim.objects[op.slot]
        fmt = 0 if f.version == 0 else 1
        who = self.sim.frame_text(f)
        if op.alloc:
            obj[0], obj[1] = fmt, fmt != 0
            return
        if obj[0] != fmt:
            self.violate(
                Property.DATA_FORMAT, t.name,
                f"{who} reads obj{op.slot} in the {'new' if obj[0] else 'old'} format",
            )
        if fmt != 0 and not obj[1]:
            self.new_reads_untagged += 1
        if fmt == 0 and obj[1]:
            self.violate(
                Property.DATA_SHADOW, t.name,
                f"{who} uses obj{op.slot}, which new code created with a shadow variable: "
                "old semantics on a new-semantics object",
            )
        obj[0] = fmt

    def on_complete(self) -> None:
        sim = self.sim
        target = sim.configs[sim.dst]
        for t in sim.tasks:
            old = [f for f in t.stack if f.fn in sim.patched_now and f.version != target[f.fn]]
            if old:
                self.violate(
                    Property.COMPLETION, t.name,
                    f"declared complete while {t.name} still runs "
                    f"{', '.join(sim.frame_text(f) for f in old)}",
                )

    def after_event(self) -> None:
        if Property.SYSTEM_WIDE in self.first:
            return
        sim = self.sim
        frames = [f for t in sim.tasks for f in t.stack if f.fn in sim.ever_patched]
        if not self.consistent(frames):
            where = sorted({f"{t.name}:{sim.frame_text(f)}" for t in sim.tasks for f in t.stack
                            if f.fn in sim.ever_patched})
            self.violate(
                Property.SYSTEM_WIDE, "-",
                f"versions run side by side: {', '.join(where)}",
            )
