"""Hypothesis strategies: small kernels and the schedules that run them.

A drawn :class:`Example` is a :class:`~lpc.sim.system.System` plus two lists of
choices: the schedule before the patch is enabled (so tasks are caught in the
middle of things) and after. Each choice picks one of the events possible at
that moment, so every list is a valid schedule and Hypothesis shrinks systems
and schedules alike to a short counterexample.

:class:`Space` says which systems are drawn. The default is everything the
simulator knows; the literature's claims often hold only in a smaller space
(no patched ``.sched.text`` function, no patched idle path, no patched
kthread main loop), which the tests use to show where a claim starts to hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from lpc.models import TaskKind
from lpc.sim.system import (
    COND_RESCHED,
    FREEZE,
    Function,
    Op,
    OpKind,
    System,
    TaskSpec,
    access,
    build,
    call,
    sleep,
    tail,
)

NAMES = "abcdefgh"
#: A quarter of the time (shrinks to False): the idle path is patched rarely, or it
#: would be every counterexample's first idea.
RARELY = st.sampled_from([False, False, False, True])


@dataclass(frozen=True)
class Space:
    max_functions: int = 5
    #: Idioms per function body (each one or two ops).
    max_ops: int = 3
    max_users: int = 2
    max_kthreads: int = 1
    max_cpus: int = 2
    #: A patched function may be in .sched.text (hidden from best-effort walkers).
    sched_text: bool = True
    #: do_idle / cpuidle_enter may be patched.
    idle_path: bool = True
    #: A kthread's main loop function may be patched.
    kthread_loops: bool = True
    tail_calls: bool = True
    #: Tasks whose stacks defeat the reliable unwinder.
    unreliable: bool = True
    #: Choices per phase (the run after enabling is at least ``after_min`` long: a
    #: violation needs a few events after the switch, and the trace stops at it anyway).
    warmup: int = 20
    after_min: int = 30
    after: int = 60


#: The literature's implicit assumptions: what a patch author avoids patching.
LITERATURE_SPACE = Space(sched_text=False, idle_path=False, kthread_loops=False)


@dataclass(frozen=True)
class Example:
    system: System
    warmup: tuple[int, ...]
    after: tuple[int, ...]

    def __repr__(self) -> str:
        return (f"Example(<{len(self.system.functions)} functions, {len(self.system.tasks)} "
                f"tasks>, warmup={list(self.warmup)}, after={list(self.after)})")


def _ops_for(i: int, names: str, space: Space) -> st.SearchStrategy[list[Op]]:
    """A body for the ``i``-th function: it may call only later ones (no recursion).

    Bodies are made of idioms rather than single ops: a counterexample nearly
    always needs "sleep inside a patched function, then call or touch something",
    and idioms make that likely without ruling anything else out.
    """
    later = names[i + 1:]
    idioms: list[tuple[Op, ...]] = [(sleep(True),), (access(0),), (access(0, alloc=True),)]
    for x in later:
        idioms += [(call(x),), (sleep(True), call(x))]
    idioms += [
        (sleep(True), access(0)),
        (sleep(False),),
        (COND_RESCHED,),
        (Op(OpKind.FNPTR, names[(i + 1) % len(names)]),),
    ]
    return st.lists(st.sampled_from(idioms), max_size=space.max_ops).map(
        lambda parts: [op for part in parts for op in part]
    )


@st.composite
def systems(draw: st.DrawFn, space: Space = Space()) -> System:
    n = draw(st.integers(2, space.max_functions))
    names = NAMES[:n]
    functions = []
    for i, name in enumerate(names):
        ops = draw(_ops_for(i, names, space))
        if space.tail_calls and i < n - 1 and draw(st.booleans()):
            ops.append(tail(draw(st.sampled_from(names[i + 1:]))))
        functions.append(Function(name, tuple(ops)))
    patched = set(draw(st.sets(st.sampled_from(names), min_size=1)))
    if space.sched_text:
        hidden = draw(st.sets(st.sampled_from(names), max_size=1))
        functions = [
            Function(f.name, f.ops, f.loops, sched_text=f.name in hidden) for f in functions
        ]
    tasks = []
    for u in range(draw(st.integers(1, space.max_users))):
        entries = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
        unreliable = space.unreliable and draw(st.booleans())
        tasks.append(TaskSpec(f"user{u}", TaskKind.USER, tuple(entries), unreliable=unreliable))
    for k in range(draw(st.integers(0, space.max_kthreads))):
        loop_ops = draw(st.lists(
            st.sampled_from([*(call(x) for x in names), sleep(True), sleep(False), FREEZE,
                             COND_RESCHED]),
            min_size=1, max_size=3,
        ))
        fn = f"kthread{k}_fn"
        functions.append(Function(fn, tuple(loop_ops), loops=True))
        if space.kthread_loops and draw(st.booleans()):
            patched.add(fn)
        kgr_safe = draw(st.booleans())
        # kGraft knows workqueue workers have a safe point (the annotated worker loop).
        name = f"kworker/0:{k}" if kgr_safe else f"kthread{k}"
        tasks.append(TaskSpec(name, TaskKind.KTHREAD, (fn,), freezable=draw(st.booleans()),
                              kgr_safe=kgr_safe))
    cpus = draw(st.integers(1, space.max_cpus))
    idle = space.idle_path
    return build(
        functions, tasks, patched, cpus=cpus, slots=1,
        patch_do_idle=idle and draw(RARELY),
        patch_cpuidle=idle and draw(RARELY),
    )


@st.composite
def shaped_systems(draw: st.DrawFn, space: Space = Space()) -> System:
    """Systems made of the shapes every hazard in the literature has, randomised.

    * ``pair``: ``g`` sleeps, then calls ``f``; ``f`` is reached only from ``g``;
    * ``via``: ``g`` calls unpatched ``h``, which calls ``f`` (the trivial model's hole);
    * ``tail``: unpatched ``u`` calls ``g``, which sleeps, then tail-calls ``f``;
    * ``data``: ``a`` allocates the shared object, ``r`` sleeps, then uses it;
    * ``kloop``: a kthread's loop calls ``f``, sleeps and passes try_to_freeze();
    * ``hidden``: ``g`` of the pair lives in .sched.text;
    * ``idle``: ``do_idle`` or ``cpuidle_enter`` is patched (the idle tasks' own code).

    Whether each function is patched, how each sleep sleeps and which task
    enters where are drawn, so these are families, not fixed examples.
    """
    shapes = ["pair", "via", "data", "kloop"]
    if space.idle_path:
        shapes.append("idle")
    if space.tail_calls:
        shapes.append("tail")
    if space.sched_text:
        shapes.append("hidden")
    chosen = draw(st.lists(st.sampled_from(shapes), min_size=1, max_size=2, unique=True))
    fns: list[Function] = []
    patched: set[str] = set()
    entries: list[str] = []
    kthreads: list[TaskSpec] = []

    def maybe_patch(*names: str) -> None:
        for name in names:
            if draw(st.sampled_from([True, True, False])):
                patched.add(name)

    def nap() -> Op:
        return sleep(draw(st.sampled_from([True, True, False])))

    users: list[TaskSpec] = []

    def user(*entry: str) -> None:
        unreliable = space.unreliable and draw(RARELY)
        users.append(TaskSpec(f"user{len(users)}", TaskKind.USER, entry, unreliable=unreliable))

    for k, shape in enumerate(chosen):
        g, f, h, u = f"g{k}", f"f{k}", f"h{k}", f"u{k}"
        if shape == "idle":
            continue  # decided with the CPUs below
        if shape in ("pair", "hidden"):
            # g may touch the shared object after the call, f may use or re-create it:
            # a surviving old g then meets whatever new f left behind.
            hidden = shape == "hidden"
            after = (access(0),) if hidden or draw(st.booleans()) else ()
            inner = draw(st.sampled_from(
                [(), (access(0, alloc=True),)] if hidden
                else [(), (access(0),), (access(0, alloc=True),)]
            ))
            fns += [Function(g, (nap(), call(f), *after), sched_text=hidden),
                    Function(f, inner)]
            maybe_patch(g, f)
            user(g)
        elif shape == "via":
            fns += [Function(g, (nap(), call(h))), Function(h, (call(f),)), Function(f, ())]
            maybe_patch(g, f)
            user(g)
        elif shape == "tail":
            fns += [Function(u, (call(g),)), Function(g, (nap(), tail(f))), Function(f, ())]
            maybe_patch(g, f)
            user(u)
        elif shape == "data":
            a, r = f"alloc{k}", f"use{k}"
            fns += [Function(a, (access(0, alloc=True),)), Function(r, (nap(), access(0)))]
            maybe_patch(a, r)
            user(r)
            user(a)
        else:  # kloop
            loop = f"kthread{k}_fn"
            fns += [Function(loop, (call(f), nap(), FREEZE), loops=True), Function(f, ())]
            if draw(st.booleans()):
                patched.add(f)
            if space.kthread_loops:
                maybe_patch(loop)
            kgr_safe = draw(st.booleans())
            name = f"kworker/0:{k}" if kgr_safe else f"kthread{k}"
            kthreads.append(TaskSpec(name, TaskKind.KTHREAD, (loop,),
                                     freezable=draw(st.booleans()), kgr_safe=kgr_safe))
            entries.append(f)
    # Sometimes one more user, entering anywhere the shapes start.
    starts = [t.entries[0] for t in users] + entries
    one_more: bool = draw(st.booleans())
    if starts and one_more:
        more: list[str] = draw(st.lists(st.sampled_from(starts), min_size=1, max_size=2,
                                        unique=True))
        user(*more)
    cpus = draw(st.integers(1, space.max_cpus))
    idle = st.booleans() if "idle" in chosen else RARELY
    do_idle = space.idle_path and draw(idle)
    cpuidle = space.idle_path and draw(idle)
    if not patched and not (do_idle or cpuidle):
        patched.add(fns[0].name if fns else "do_idle")
    return build(
        fns, [*users, *kthreads], patched - {"do_idle"}, cpus=cpus, slots=1,
        patch_do_idle=do_idle or "do_idle" in patched, patch_cpuidle=cpuidle,
    )


@st.composite
def examples(draw: st.DrawFn, space: Space = Space()) -> Example:
    """Half random systems, half shaped ones; then the schedules around enabling."""
    system = draw(st.one_of(systems(space), shaped_systems(space)))
    choice = st.integers(0, 31)
    warmup = draw(st.lists(choice, max_size=space.warmup))
    after = draw(st.lists(choice, min_size=space.after_min, max_size=space.after))
    return Example(system, tuple(warmup), tuple(after))
