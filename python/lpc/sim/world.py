"""The simulated kernel's state, and what its drivers and monitors may use of it.

The engine (:mod:`lpc.sim.engine`) owns the running system and calls into two
kinds of plugins: a model's driver (:mod:`lpc.sim.drivers`: where tasks switch,
what the model's nudges do) and the property monitor
(:mod:`lpc.sim.properties`). Both see the engine through :class:`Kernel`,
declared here, so that neither imports the engine: the engine imports them.
"""

from __future__ import annotations

from typing import Protocol

from lpc.models import StackSource, TaskFacts, TaskKind
from lpc.sim.system import Op, System, TaskSpec

#: (kind, a, b): see the engine's module docstring.
Event = tuple[str, int, int]


class Frame:
    """One activation: a function, the version it runs, where it is in its body."""

    __slots__ = ("entry_version", "fn", "pc", "root", "stale", "version")

    def __init__(self, fn: str, version: int, root: bool = False) -> None:
        self.fn = fn
        self.version = version
        #: The version the activation started in (function atomicity compares the two).
        self.entry_version = version
        self.pc = 0
        self.root = root
        #: Function addresses stored in this frame's locals (stale words).
        self.stale: list[str] = []


class Task:
    __slots__ = (
        "cpu", "freeze_pending", "in_user", "irq", "kicked", "kind", "name", "parked", "pending",
        "sleep_op", "spec", "stack", "state", "switched_at", "tid", "universe",
    )

    def __init__(self, tid: int, spec: TaskSpec, name: str | None = None) -> None:
        self.tid = tid
        self.spec = spec
        self.kind = spec.kind
        self.name = name or spec.name
        self.stack: list[Frame] = []
        #: "R" running or runnable, "S" interruptible sleep, "D" uninterruptible sleep.
        self.state = "R"
        self.in_user = False
        self.cpu: int | None = None
        #: A task preempted in the kernel has an interrupt frame on its stack.
        self.irq = False
        self.sleep_op: Op | None = None
        #: wake_up_if_idle() was sent to this idle task.
        self.kicked = False
        #: An idle task inside schedule_idle(), its CPU given to another task.
        self.parked = False
        #: Josh's freezer was asked to freeze this task.
        self.freeze_pending = False
        #: Index of the configuration whose code this task's calls reach (its universe).
        self.universe = 0
        #: TIF_PATCH_PENDING: the task has not reached the transition's target yet.
        self.pending = False
        self.switched_at: float | None = None

    @property
    def sleeping(self) -> bool:
        return self.state != "R"

    @property
    def kernel_stack_empty(self) -> bool:
        """No kernel frame but the entry plumbing: in user space, or crossing into it."""
        return self.kind is TaskKind.USER and all(f.root for f in self.stack)


class SwitchObserver(Protocol):
    """What a driver tells the property monitor."""

    def on_switch(self, t: Task, where: str) -> None: ...


class Kernel(Protocol):
    """The running simulated kernel, as a driver or the monitor sees it."""

    system: System
    tasks: list[Task]
    #: configs[i][fn]: the version of fn that runs in universe i; 0 = the original kernel.
    configs: list[dict[str, int]]
    #: The transition: from configuration src to dst, over the functions that differ.
    src: int
    dst: int
    patched_now: frozenset[str]
    ever_patched: frozenset[str]
    started: bool
    time: float
    events: list[Event]
    cpu_current: list[int | None]
    #: Shared objects: [format, has_shadow]; format 0 = the original layout.
    objects: list[list[int | bool]]

    @property
    def observer(self) -> SwitchObserver: ...

    def note(self, text: str) -> None: ...

    def vname(self, version: int) -> str: ...

    def cname(self, cfg: int) -> str: ...

    def frame_text(self, f: Frame) -> str: ...

    def on_cpu(self, t: Task) -> bool: ...

    def facts(
        self, t: Task, source: StackSource, *, stopped: bool = False, self_check: bool = False
    ) -> TaskFacts: ...

    def switch(self, t: Task, where: str) -> None: ...

    def complete(self) -> None: ...

    def wake(self, t: Task, why: str = "woken") -> None: ...

    def signal(self, t: Task, why: str = "a signal") -> None: ...

    def idle_quiescent(self) -> bool: ...

    def park_idle(self, c: int) -> None: ...


__all__ = ["Event", "Frame", "Kernel", "SwitchObserver", "Task"]
