"""``lpc oracle run``: boot the real kernel under qemu and record what it decides.

The guest (tools/oracle/build-guest.sh) is Debian's cloud kernel with
CONFIG_LIVEPATCH, a busybox initramfs and the project's modules. One boot runs
one scenario script; its captures come back as a tar stream on the guest's
second serial port. :func:`record` turns them into a case directory that
:func:`lpc.oracle.compare.compare_case` reads — with the guest's kallsyms
trimmed to the symbols the case needs (see :func:`lpc.oracle.case.trim_kallsyms`).

KVM is not required (nor, on the development machines, usable): the guest
runs under TCG. Nothing here touches the host's livepatch state.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lpc.dump import parse_dump
from lpc.oracle.case import CASE_FILE, CASE_SCHEMA_VERSION, CaseError, trim_kallsyms
from lpc.oracle.scenarios import PASSTHRU, SCENARIOS, Scenario, thunk_spec

__all__ = [
    "boot",
    "build_guest",
    "default_tools_dir",
    "kernel_series",
    "record",
    "run_scenario",
    "tcg_accel",
]

#: seconds a boot may take before it is killed (the longest scenario needs ~60 s)
BOOT_TIMEOUT_S = 240
QEMU = "qemu-system-x86_64"
#: the .sched.text and lock text bounds (lpc.symbols: in_hidden_text)
HIDDEN_TEXT_MARKERS = ("__sched_text_start", "__sched_text_end", "__lock_text_start",
                       "__lock_text_end")


#: captures copied into a case besides those its checks name
EVIDENCE_SUFFIXES = ("_sysrq.txt", "_states.txt", "_states_pre.txt", "_stat.txt",
                     "_stat_pre.txt", "_cpus.txt", "_params.txt", "_calls.txt",
                     "_livepatch.txt")
#: the files of a guest snapshot directory (tools/oracle/guest/lib.sh snapshot)
SNAPSHOT_FILES = ("stacks.txt", "meta.txt", "patch_state.txt", "livepatch.txt", "calls.txt")
#: where the static livepatch modules the guest loads are committed (module.txt)
MODULES_DIR = "tests/data/modules"


def kernel_series(release: str) -> str:
    """``6.12`` of ``6.12.111+deb12-cloud-amd64``: the directory of a kernel's cases
    (tests/data/oracle/<series>/<scenario>)."""
    m = re.match(r"(\d+)\.(\d+)", release)
    if m is None:
        raise OracleError(f"{release!r}: not a kernel release")
    return f"{m[1]}.{m[2]}"


class OracleError(CaseError):
    """The guest could not be built or booted, or returned no captures."""


def default_tools_dir() -> Path:
    """tools/oracle of the source tree this package runs from (or $LPC_ORACLE_TOOLS)."""
    env = os.environ.get("LPC_ORACLE_TOOLS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "tools" / "oracle"


def build_guest(tools: Path, work: Path, kver: str | None = None, chroot: Path | None = None,
                vmlinuz: Path | None = None) -> None:
    """Kernel image, modules and initramfs into ``work`` (build-guest.sh).

    ``kver`` picks the kernel ABI (default: the newest cloud headers installed,
    on the host or in ``chroot``); ``chroot`` builds the modules inside that
    chroot (headers that need a newer compiler); ``vmlinuz`` is the image to
    boot instead of the Debian package of ``kver``."""
    script = tools / "build-guest.sh"
    if not script.exists():
        raise OracleError(f"{script}: no guest builder (pass --tools)")
    env = dict(os.environ)
    for key, value in (("KVER", kver), ("CHROOT", chroot), ("VMLINUZ", vmlinuz)):
        env.pop(key, None)
        if value:
            env[key] = str(value)
    proc = subprocess.run([str(script), str(work)], capture_output=True, text=True, env=env,
                          check=False)
    if proc.returncode != 0:
        raise OracleError(f"{script} failed (exit {proc.returncode}): {_tail(proc)}")


def _tail(proc: subprocess.CompletedProcess[str]) -> str:
    """The end of what a failed command said, whichever stream it used; never empty."""
    said = (proc.stderr or "").strip() or (proc.stdout or "").strip()
    return said[-2000:] if said else "it printed nothing (run it by hand to see why)"


def tcg_accel(kver: str | None) -> str:
    """qemu's ``-accel`` for a guest kernel: one TCG thread for v6.16 and later.

    From v6.16 ``__schedule()`` holds the static branch of
    ``klp_sched_try_switch()`` (include/linux/livepatch_sched.h), flipped when a
    transition starts and ends. Under multi-threaded TCG a vCPU then sometimes
    executes the int3 of a text_poke that the other vCPU has already retired:
    "Oops: int3" at ``__schedule+0xa4`` in 3 of 7 boots of 7.3.4 (the 7.x kit's
    notes), none in 11 with ``thread=single``, which costs no time here. Older
    guests keep qemu's default (multi-threaded), as recorded.
    ``$LPC_ORACLE_TCG`` overrides (e.g. ``tcg,thread=multi``)."""
    env = os.environ.get("LPC_ORACLE_TCG")
    if env:
        return env
    m = re.match(r"(\d+)\.(\d+)", kver or "")
    if m is not None and (int(m[1]), int(m[2])) >= (6, 16):
        return "tcg,thread=single"
    return "tcg"


def _guest_kver(work: Path) -> str | None:
    path = work / "kver"
    return path.read_text().strip() if path.exists() else None


def boot(work: Path, scenario: str, out: Path, funcs: str | None = None,
         timeout_s: float = BOOT_TIMEOUT_S) -> float:
    """One TCG boot running one scenario; the guest's /out is unpacked into ``out``.
    Returns the wall-clock seconds the boot took."""
    append = f"console=ttyS0 panic=-1 log_buf_len=4M lpc_scenario={scenario}"
    if funcs:
        append += f" lpc_funcs={funcs}"
    out.mkdir(parents=True, exist_ok=True)
    tar_path = out / "guest-out.tar"
    tar_path.unlink(missing_ok=True)
    cmd = [QEMU, "-accel", tcg_accel(_guest_kver(work)), "-cpu", "max", "-m", "512M", "-smp", "2",
           "-display", "none",
           "-no-reboot", "-monitor", "none", "-serial", f"file:{out / 'console.txt'}",
           "-serial", f"file:{tar_path}", "-kernel", str(work / "vmlinuz"),
           "-initrd", str(work / "initramfs.cpio.gz"), "-append", append]
    start = time.monotonic()
    try:
        subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s,
                       check=False)
    except subprocess.TimeoutExpired as exc:
        raise OracleError(f"scenario {scenario}: the guest did not power off in {timeout_s:g} s "
                          f"(console: {out / 'console.txt'})") from exc
    elapsed = time.monotonic() - start
    if not tar_path.exists() or tar_path.stat().st_size == 0:
        raise OracleError(f"scenario {scenario}: the guest returned nothing "
                          f"(console: {out / 'console.txt'})")
    with tarfile.open(tar_path) as tar:
        tar.extractall(out, filter="data")
    tar_path.unlink()
    return elapsed


def _patch_for(spec_patch: str, funcs: str, subst: Mapping[str, str]) -> str:
    if spec_patch == "funcs":
        return funcs
    if spec_patch == "thunks":
        return thunk_spec(funcs)
    return _substitute(spec_patch, subst)


def _substitute(text: str, subst: Mapping[str, str]) -> str:
    """``{key}`` of a scenario's patch or pass-through list: the guest's value."""
    def one(m: re.Match[str]) -> str:
        if m[1] not in subst:
            raise OracleError(f"{text!r}: the guest named no {m[1]!r} (subst.txt)")
        return subst[m[1]]
    return re.sub(r"\{(\w+)\}", one, text)


def _read_subst(raw: Path) -> dict[str, str]:
    path = raw / "subst.txt"
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def record(raw: Path, scenario: Scenario, case_dir: Path, boot_s: float | None = None) -> Path:
    """A case directory from one boot's captures (``raw``)."""
    funcs = (raw / "funcs.txt").read_text().strip() if (raw / "funcs.txt").exists() else ""
    if not (raw / "kernel_release.txt").exists():
        raise OracleError(f"{raw}: no kernel_release.txt: the scenario did not finish")
    case_dir.mkdir(parents=True, exist_ok=True)
    subst = _read_subst(raw)
    passthru = _passthru(scenario, funcs, subst)
    checks: list[dict[str, Any]] = []
    kept: set[str] = set()
    for spec in scenario.checks:
        dump_file = f"{spec.dump}_sysrq.txt"
        states_file = f"{spec.states}_states.txt"
        for name in (dump_file, states_file):
            if not (raw / name).exists():
                raise OracleError(f"{raw / name}: missing: the scenario stopped early "
                                  f"(see {raw / 'guest.log'})")
        patch = _patch_for(spec.patch, funcs, subst)
        entry: dict[str, Any] = asdict(spec)
        entry.update(patch=patch, loaded=[_substitute(p, subst) for p in spec.loaded],
                     dump_file=dump_file, states_file=states_file,
                     kallsyms_file=f"{spec.dump}_kallsyms.txt",
                     calls_file=f"{spec.dump}_calls.txt", passthru=passthru)
        if (raw / f"{spec.states}_states_pre.txt").exists():
            entry["states_pre_file"] = f"{spec.states}_states_pre.txt"
        checks.append(entry)
        wanted = [dump_file, states_file, str(entry.get("states_pre_file", "")),
                  str(entry["calls_file"])]
        for copy in wanted:
            if copy and copy not in kept and (raw / copy).exists():
                shutil.copyfile(raw / copy, case_dir / copy)
                kept.add(copy)
        if entry["kallsyms_file"] not in kept:
            _write_trimmed_kallsyms(raw, spec.dump, patch, case_dir / entry["kallsyms_file"])
            kept.add(entry["kallsyms_file"])
    # every other capture is evidence for a reader (where each task ran, the
    # CPUs' backtraces, lpc_sleeper's counters, dumps no check judges)
    for path in sorted(raw.iterdir()):
        name = path.name
        if name in kept or not name.endswith(EVIDENCE_SUFFIXES):
            continue
        shutil.copyfile(path, case_dir / name)
        kept.add(name)
        if name.endswith("_sysrq.txt"):
            label = name[: -len("_sysrq.txt")]
            kallsyms = f"{label}_kallsyms.txt"
            if kallsyms not in kept and (raw / f"{label}_kallsyms.txt.gz").exists():
                _write_trimmed_kallsyms(raw, label, "", case_dir / kallsyms)
                kept.add(kallsyms)
    series = _record_series(raw, scenario, funcs, subst, case_dir) if scenario.series else None
    if series is not None:
        checks.extend(series.pop("checks"))
    for name in ("klp_dmesg.txt", "guest.log", "funcs.txt", "subst.txt", "pin.txt",
                 "module.txt"):
        if (raw / name).exists():
            shutil.copyfile(raw / name, case_dir / name)
    release = (raw / "kernel_release.txt").read_text().strip()
    doc = {
        "schema_version": CASE_SCHEMA_VERSION,
        "scenario": scenario.name,
        "description": scenario.description,
        "kernel_release": release,
        "funcs": funcs,
        "recorded": time.strftime("%Y-%m-%d", time.gmtime()),
        "recorded_by": "lpc oracle run (qemu TCG, -smp 2, tools/oracle)",
        "boot_seconds": None if boot_s is None else round(boot_s, 1),
        "kallsyms": "trimmed to the dump's frame functions, the patch functions and the "
                    "loaded modules; each kept function keeps its successor, so sizes and "
                    "sympos are the guest's",
        "klp_dmesg_file": "klp_dmesg.txt",
        "checks": checks,
    }
    module = _module_file(raw, release)
    if module is not None:
        doc["module_file"] = module
        doc["module_note"] = ("the patch module the guest loaded, as committed (a "
                              "strip --strip-debug copy except 6.1's lpc_fix.ko; "
                              f"{MODULES_DIR}/README.md); module.txt says what was below it")
    livepatch = sorted(p.name for p in case_dir.glob("*_livepatch.txt"))
    if livepatch:
        doc["livepatch_files"] = livepatch
        doc["livepatch_format"] = ("tools/oracle/guest/lib.sh lpstate: the /sys/kernel/livepatch "
                                   "tree at that moment")
    if series is not None:
        doc["series"] = series
    if scenario.needs:
        doc["needs"] = scenario.needs
    (case_dir / CASE_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    return case_dir


def _module_file(raw: Path, release: str) -> str | None:
    """module.txt's ``module=NAME.ko``: the committed copy of that module."""
    path = raw / "module.txt"
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "module" and value.strip():
            return f"{MODULES_DIR}/{kernel_series(release)}/{value.strip()}"
    return None


def _passthru(scenario: Scenario, funcs: str, subst: Mapping[str, str]) -> dict[str, list[str]]:
    """The pass-through modules of the case and their slots' functions."""
    if scenario.passthru is not None:
        return {m: [_substitute(fn, subst) for fn in f] for m, f in scenario.passthru}
    return {PASSTHRU: [f for f in funcs.split(",") if f]}


def _record_series(raw: Path, scenario: Scenario, funcs: str, subst: Mapping[str, str],
                   case_dir: Path) -> dict[str, Any]:
    """The guest's snapshot series ``<series>_NN/``: copied, its kallsyms trimmed
    once for all of them, and a ``now`` check per snapshot (its /proc stacks
    against the patch_state read beside them)."""
    prefix = scenario.series
    assert prefix is not None
    dirs = sorted(p for p in raw.glob(f"{prefix}_[0-9]*") if p.is_dir())
    if not dirs:
        raise OracleError(f"{raw}: no {prefix}_NN snapshot (see {raw / 'guest.log'})")
    patch = _patch_for(scenario.series_patch, funcs, subst)
    kallsyms_gz = raw / f"{prefix}_kallsyms.txt.gz"
    if not kallsyms_gz.exists():
        raise OracleError(f"{kallsyms_gz}: missing")
    kallsyms = f"{prefix}_kallsyms.txt"
    names: set[str] = set()
    for d in dirs:
        (case_dir / d.name).mkdir(exist_ok=True)
        for f in SNAPSHOT_FILES:
            if (d / f).exists():
                shutil.copyfile(d / f, case_dir / d.name / f)
        # meta.txt names the symbol table as the case keeps it
        meta = case_dir / d.name / "meta.txt"
        if meta.exists():
            meta.write_text("".join(
                f"kallsyms=../{kallsyms} (the series', trimmed)\n"
                if line.startswith("kallsyms=") else line
                for line in meta.read_text().splitlines(keepends=True)))
        names.update(parse_dump(d).names)
    text = gzip.decompress(kallsyms_gz.read_bytes()).decode("utf-8", "replace")
    names.update(p.split(":")[-1].split("@")[0] for p in patch.split(",") if p)
    names.update(HIDDEN_TEXT_MARKERS)
    modules = {line.split()[3].strip("[]") for line in io.StringIO(text)
               if len(line.split()) > 3}
    (case_dir / kallsyms).write_text(trim_kallsyms(text, names, modules))
    passthru = _passthru(scenario, funcs, subst)
    checks = []
    for i, d in enumerate(dirs):
        check: dict[str, Any] = {
            "when": d.name, "dump": d.name, "states": d.name, "compare": "now",
            "patch": patch, "unpatch": False, "force": False, "loaded": [], "replace": False,
            "dump_file": d.name, "states_file": f"{d.name}/patch_state.txt",
            "kallsyms_file": kallsyms, "passthru": passthru,
        }
        if (d / "calls.txt").exists():
            check["calls_file"] = f"{d.name}/calls.txt"
        if i + 1 < len(dirs):
            # the kernel's state at the next snapshot: a retry_pending rule's evidence
            check["states_next_file"] = f"{dirs[i + 1].name}/patch_state.txt"
        checks.append(check)
    snaps = [d.name for d in dirs]
    return {
        "snapshots": snaps,
        "kallsyms_file": kallsyms,
        "patch": patch,
        "format": "each a snapshot directory as lpc capture writes it (stacks.txt, meta.txt) "
                  "plus patch_state.txt (lib.sh states' format, read thread by thread right "
                  "after each stack) and livepatch.txt (lpstate); no kallsyms.txt: the "
                  "series' one, taken once before the first snapshot, trimmed",
        "replay": "lpc watch " + " ".join(f"--dump {s}" for s in snaps)
                  + f" --symbols {kallsyms} --patch {patch}"
                  + "".join(f" --name {m}" for m in list(passthru)[:1]),
        "checks": checks,
    }


def _write_trimmed_kallsyms(raw: Path, label: str, patch: str, dest: Path) -> None:
    source = raw / f"{label}_kallsyms.txt.gz"
    if not source.exists():
        raise OracleError(f"{source}: missing")
    text = gzip.decompress(source.read_bytes()).decode("utf-8", "replace")
    dump = parse_dump(raw / f"{label}_sysrq.txt")
    names = set(dump.names)
    names.update(p.split(":")[-1].split("@")[0] for p in patch.split(",") if p)
    names.update(HIDDEN_TEXT_MARKERS)
    modules = {line.split()[3].strip("[]") for line in io.StringIO(text)
               if len(line.split()) > 3}
    dest.write_text(trim_kallsyms(text, names, modules))


def run_scenario(name: str, work: Path, out_root: Path, funcs: str | None = None,
                 timeout_s: float = BOOT_TIMEOUT_S) -> Path:
    """Boot ``name`` and record its case under ``out_root/name``."""
    scenario = SCENARIOS[name]
    if funcs and not scenario.takes_funcs:
        raise OracleError(f"scenario {name} has a fixed patch: --funcs does not apply")
    raw = work / "raw" / name
    shutil.rmtree(raw, ignore_errors=True)
    elapsed = boot(work, name, raw, funcs, timeout_s)
    case_dir = out_root / name
    shutil.rmtree(case_dir, ignore_errors=True)
    return record(raw, scenario, case_dir, elapsed)
