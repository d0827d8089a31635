"""The static half of a simulated kernel: functions, tasks, CPUs and the patch.

A :class:`System` is a call graph of kernel functions, each a short program of
:class:`Op` steps, and the tasks that run them:

* **user tasks** loop between user space and system calls; a system call
  enters through the unpatchable plumbing ``entry_SYSCALL_64`` →
  ``do_syscall_64`` and calls one of the task's ``entries``;
* **kthreads** start in ``ret_from_fork`` → ``kthread`` → their thread
  function, a main loop that never returns;
* **idle tasks**, one per CPU, run ``cpu_startup_entry`` → ``do_idle`` for ever
  (``do_idle`` waits in ``cpuidle_enter``, gives the CPU to runnable tasks in
  ``schedule_idle()``, and ends with klp's idle switch point).

The patch replaces the bodies of a set of functions. Old and new versions have
the same control flow here: what a patch *changes* is described by its patch
class (see :mod:`lpc.sim.properties`), which decides which property the change
needs. Versions are integers: 0 is the original code, ``k`` the code of the
``k``-th patch. A *configuration* maps every function to the version that runs
in one universe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from lpc.kernel import IDLE_ROOT, KTHREAD_ROOT, SCHED_FRAMES, USER_ROOT
from lpc.models import TaskKind


class OpKind(str, Enum):
    CALL = "call"
    #: A sibling call: the caller's frame is replaced by the callee's (last op only).
    TAIL = "tail"
    #: Block until woken; ``interruptible`` (TASK_INTERRUPTIBLE) or D state.
    SLEEP = "sleep"
    COND_RESCHED = "cond_resched"
    #: try_to_freeze() in a kthread's loop: the freezer point and kGraft's safe point.
    FREEZE = "freeze"
    #: Read and write shared object ``slot``; ``alloc`` first re-creates it.
    ACCESS = "access"
    #: Store the address of function ``target`` in a local: a stale word for word scans.
    FNPTR = "fnptr"
    #: The idle task waits here for work or a wake_up_if_idle() kick (cpuidle).
    IDLE_WAIT = "idle_wait"
    #: schedule_idle(): a runnable task may take this CPU.
    SCHED_IDLE = "sched_idle"
    #: klp_update_patch_state() at the tail of do_idle(), then return (last op only).
    IDLE_SWITCH = "idle_switch"


class Op(NamedTuple):
    kind: OpKind
    target: str = ""
    interruptible: bool = True
    #: A sleep nothing ends but a signal or a nudge (a hung NFS read, an msleep loop's wait).
    forever: bool = False
    slot: int = 0
    alloc: bool = False
    #: The sleep's state has TASK_FREEZABLE (wait_event_freezable, futex, nanosleep...):
    #: 6.16+ __schedule() lets livepatch check the task there (klp_sched_try_switch).
    freezable: bool = False

    def text(self) -> str:
        k = self.kind
        if k in (OpKind.CALL, OpKind.TAIL, OpKind.FNPTR):
            return f"{k.value} {self.target}"
        if k is OpKind.SLEEP:
            state = "S" if self.interruptible else "D"
            return (f"sleep {state}" + (" freezable" if self.freezable else "")
                    + (" forever" if self.forever else ""))
        if k is OpKind.ACCESS:
            return f"{'alloc+' if self.alloc else ''}access obj{self.slot}"
        return str(k.value)


def call(target: str) -> Op:
    return Op(OpKind.CALL, target)


def tail(target: str) -> Op:
    return Op(OpKind.TAIL, target)


def sleep(interruptible: bool = True, forever: bool = False, freezable: bool = False) -> Op:
    return Op(OpKind.SLEEP, interruptible=interruptible, forever=forever, freezable=freezable)


def access(slot: int = 0, alloc: bool = False) -> Op:
    return Op(OpKind.ACCESS, slot=slot, alloc=alloc)


COND_RESCHED = Op(OpKind.COND_RESCHED)
FREEZE = Op(OpKind.FREEZE)


@dataclass(frozen=True)
class Function:
    name: str
    ops: tuple[Op, ...] = ()
    #: A loop: after the last op it starts again and never returns (kthread main loops).
    loops: bool = False
    #: In .sched.text (__sched): dropped by best-effort stack walkers.
    sched_text: bool = False

    def __post_init__(self) -> None:
        for i, op in enumerate(self.ops):
            if op.kind in (OpKind.TAIL, OpKind.IDLE_SWITCH) and i != len(self.ops) - 1:
                raise ValueError(f"{self.name}: {op.kind.value} must be the last op")
        if self.loops and not self.ops:
            raise ValueError(f"{self.name}: an empty loop never yields")
        if self.loops and self.ops[-1].kind in (OpKind.TAIL, OpKind.IDLE_SWITCH):
            raise ValueError(f"{self.name}: a loop never leaves its frame")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: TaskKind
    #: User: the system-call functions it may enter; kthread: (thread function,);
    #: idle: (idle loop function,).
    entries: tuple[str, ...]
    #: set_freezable(): the freezer (and kGraft) stop it at try_to_freeze().
    freezable: bool = False
    #: An explicit kgr_task_safe() annotation in its loop (kGraft).
    kgr_safe: bool = False
    #: Idle tasks: the CPU they belong to.
    cpu: int = 0
    #: Something on its stack always defeats the reliable unwinder (a kretprobe
    #: trampoline, an exception frame).
    unreliable: bool = False
    #: Unpatched frames between the root and its entry (deep call chains).
    extra_depth: int = 0

    @property
    def comm(self) -> str:
        return self.name


#: Frames no patch touches: the roots of every kind of task (lpc.kernel) and the scheduler.
ROOTS = {TaskKind.USER: USER_ROOT, TaskKind.KTHREAD: KTHREAD_ROOT, TaskKind.IDLE: IDLE_ROOT}
PLUMBING = frozenset(
    {*USER_ROOT, *KTHREAD_ROOT, *IDLE_ROOT, *SCHED_FRAMES, "exit_to_user_mode_loop",
     "asm_sysvec_apic_timer_interrupt", "deep_frame"}
)


@dataclass(frozen=True)
class System:
    """Functions, tasks, CPUs and the set of functions the patch replaces."""

    functions: Mapping[str, Function]
    tasks: tuple[TaskSpec, ...]
    patched: frozenset[str]
    cpus: int = 1
    #: Shared objects the data classes read and write.
    slots: int = 2
    #: The patch's callback can find and convert them at the switch instant (False:
    #: the data is in flight in some task's locals, as in libpulp's contract test).
    convertible: bool = True
    _callers: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for f in self.functions.values():
            for op in f.ops:
                if op.kind in (OpKind.CALL, OpKind.TAIL, OpKind.FNPTR):
                    if op.target not in self.functions:
                        raise ValueError(f"{f.name} calls unknown function {op.target}")
                if op.kind is OpKind.ACCESS and not 0 <= op.slot < self.slots:
                    raise ValueError(f"{f.name}: no object slot {op.slot}")
        for t in self.tasks:
            for e in t.entries:
                if e not in self.functions:
                    raise ValueError(f"task {t.name}: unknown entry {e}")
            if t.kind is TaskKind.KTHREAD and not self.functions[t.entries[0]].loops:
                raise ValueError(f"kthread {t.name}: its thread function must loop")
        idle_cpus = sorted(t.cpu for t in self.tasks if t.kind is TaskKind.IDLE)
        if idle_cpus != list(range(self.cpus)):
            raise ValueError("every CPU needs exactly one idle task")
        unknown = self.patched - set(self.functions)
        if unknown:
            raise ValueError(f"patch names unknown functions {sorted(unknown)}")
        callers: dict[str, set[str]] = {name: set() for name in self.functions}
        for f in self.functions.values():
            for op in f.ops:
                if op.kind in (OpKind.CALL, OpKind.TAIL):
                    callers[op.target].add(f.name)
        for t in self.tasks:
            root = ROOTS[t.kind][-1]
            for e in t.entries:
                callers[e].add(root)
        object.__setattr__(self, "_callers", {k: frozenset(v) for k, v in callers.items()})

    def callers(self, name: str) -> frozenset[str]:
        return self._callers[name]

    @property
    def prototype_changed(self) -> frozenset[str]:
        """Patched functions whose every caller is patched too.

        Only those may change prototype in a patch: an unpatched caller would keep
        passing the old arguments. So under the ``prototype`` class, a call into
        one of them must come from a caller of the same version.
        """
        return frozenset(
            f for f in self.patched
            if self.callers(f) and self.callers(f) <= self.patched
        )

    def describe(self) -> list[str]:
        """The system in a few lines, for a counterexample's header."""
        lines = []
        for f in self.functions.values():
            tags = []
            if f.name in self.patched:
                tags.append("patched")
            if f.name in self.prototype_changed:
                tags.append("all callers patched")
            if f.sched_text:
                tags.append(".sched.text")
            if f.loops:
                tags.append("loops")
            body = "; ".join(op.text() for op in f.ops) or "-"
            lines.append(f"  {f.name}({', '.join(tags)}): {body}")
        for t in self.tasks:
            extra = []
            if t.freezable:
                extra.append("freezable")
            if t.kgr_safe:
                extra.append("kgr_task_safe")
            if t.unreliable:
                extra.append("unreliable stack")
            if t.extra_depth:
                extra.append(f"+{t.extra_depth} frames")
            if t.kind is TaskKind.IDLE:
                extra.append(f"cpu{t.cpu}")
            what = ", ".join(extra)
            lines.append(
                f"  task {t.name} [{t.kind.value}] → {', '.join(t.entries)}"
                + (f" ({what})" if what else "")
            )
        return lines


def idle_functions(
    *, patch_do_idle: bool = False, patch_cpuidle: bool = False
) -> tuple[list[Function], set[str]]:
    """``do_idle`` and ``cpuidle_enter`` as kernel/sched/idle.c lays them out."""
    fns = [
        Function("do_idle", (call("cpuidle_enter"), Op(OpKind.SCHED_IDLE), Op(OpKind.IDLE_SWITCH))),
        Function("cpuidle_enter", (Op(OpKind.IDLE_WAIT),)),
    ]
    patched = set()
    if patch_do_idle:
        patched.add("do_idle")
    if patch_cpuidle:
        patched.add("cpuidle_enter")
    return fns, patched


def build(
    functions: Iterable[Function],
    tasks: Iterable[TaskSpec],
    patched: Iterable[str],
    *,
    cpus: int = 1,
    slots: int = 2,
    patch_do_idle: bool = False,
    patch_cpuidle: bool = False,
    convertible: bool = True,
) -> System:
    """A system with the standard idle loop and one idle task per CPU added."""
    idle, idle_patched = idle_functions(patch_do_idle=patch_do_idle, patch_cpuidle=patch_cpuidle)
    fns = {f.name: f for f in [*functions, *idle]}
    all_tasks = [*tasks] + [
        TaskSpec(f"swapper/{c}", TaskKind.IDLE, ("do_idle",), cpu=c) for c in range(cpus)
    ]
    return System(fns, tuple(all_tasks), frozenset({*patched, *idle_patched}), cpus, slots,
                  convertible)


# ---- JSON, so a counterexample can be stored and replayed ---------------------------------

_OP_DEFAULTS = Op(OpKind.CALL)


def op_to_json(op: Op) -> dict[str, object]:
    out: dict[str, object] = {"kind": op.kind.value}
    for name in ("target", "interruptible", "forever", "slot", "alloc", "freezable"):
        value = getattr(op, name)
        if value != getattr(_OP_DEFAULTS, name):
            out[name] = value
    return out


def op_from_json(doc: Mapping[str, object]) -> Op:
    return Op(
        OpKind(str(doc["kind"])),
        str(doc.get("target", "")),
        bool(doc.get("interruptible", True)),
        bool(doc.get("forever", False)),
        int(str(doc.get("slot", 0))),
        bool(doc.get("alloc", False)),
        bool(doc.get("freezable", False)),
    )


def system_to_json(system: System) -> dict[str, object]:
    return {
        "cpus": system.cpus,
        "slots": system.slots,
        "patched": sorted(system.patched),
        "functions": [
            {"name": f.name, "ops": [op_to_json(op) for op in f.ops], "loops": f.loops,
             "sched_text": f.sched_text}
            for f in system.functions.values()
        ],
        "tasks": [
            {"name": t.name, "kind": t.kind.value, "entries": list(t.entries),
             "freezable": t.freezable, "kgr_safe": t.kgr_safe, "cpu": t.cpu,
             "unreliable": t.unreliable, "extra_depth": t.extra_depth}
            for t in system.tasks
        ],
    }


def system_from_json(doc: Mapping[str, object]) -> System:
    fns = doc["functions"]
    tasks = doc["tasks"]
    patched = doc["patched"]
    assert isinstance(fns, list) and isinstance(tasks, list) and isinstance(patched, list)
    functions = {
        f["name"]: Function(f["name"], tuple(op_from_json(o) for o in f["ops"]),
                            bool(f["loops"]), bool(f["sched_text"]))
        for f in fns
    }
    specs = tuple(
        TaskSpec(t["name"], TaskKind(t["kind"]), tuple(t["entries"]), bool(t["freezable"]),
                 bool(t["kgr_safe"]), int(t["cpu"]), bool(t["unreliable"]), int(t["extra_depth"]))
        for t in tasks
    )
    return System(functions, specs, frozenset(str(p) for p in patched),
                  int(str(doc["cpus"])), int(str(doc["slots"])))
