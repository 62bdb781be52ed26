"""Coverage-guided fuzzing of every decoder with atheris (`make fuzz`).

    python tests/fuzz/run.py [--runs N] [--jobs J] [TARGET ...]

Each target runs in its own process (`--one NAME`): atheris instruments
`connectors` and `risk`, seeds libFuzzer with real records (`decoder_targets`),
mutates both bytes and JSON structure, and runs `N` executions. An exception escaping
the decoder is counted and its input kept in `var/fuzz/<target>/crash-*`, and fuzzing
goes on, so the count is the total over the run. The parent prints one line per target:
executions, uncaught exceptions and executions per second; it exits non-zero if any
target had an uncaught exception or did not finish its executions.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "var" / "fuzz"
DONE = re.compile(rb"Done (\d+) runs in (\d+) second")


def fuzz_one(name: str, runs: int) -> None:
    """Fuzz target `name` for `runs` executions in this process (atheris never returns)."""
    import atheris

    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    with atheris.instrument_imports(include=["connectors", "risk"]):
        from fuzz.decoder_targets import TARGETS, mutate_structure

        from connectors import codec  # noqa: F401 - instrumented before the targets use it
    target = TARGETS[name]
    folder = OUT / name
    corpus = folder / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in target.seeds:
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    count_file = folder / "uncaught"
    found = 0
    count_file.write_text("0\n")

    def one_input(data: bytes) -> None:
        nonlocal found
        try:
            target.run(data)
        except Exception:
            found += 1
            count_file.write_text(f"{found}\n")
            if found <= 20:
                digest = hashlib.sha1(data).hexdigest()
                (folder / f"crash-{digest}").write_bytes(data)
                (folder / f"crash-{digest}.txt").write_text(traceback.format_exc())

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.5:
            edited = mutate_structure(data, rng)
            if edited is not None and len(edited) <= max_size:
                return edited
        return atheris.Mutate(data, max_size)

    argv = [sys.argv[0], f"-runs={runs}", "-max_len=4096", "-print_final_stats=1", str(corpus)]
    atheris.Setup(argv, one_input, custom_mutator=mutator)
    atheris.Fuzz()


def run_target(name: str, runs: int) -> tuple[str, int, int, float, int]:
    """Fuzz `name` in a child process; (name, executions, uncaught, seconds, exit code)."""
    started = time.monotonic()
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    child = subprocess.run(
        [sys.executable, __file__, "--one", name, "--runs", str(runs)],
        capture_output=True,
        env=env,
        check=False,
    )
    seconds = time.monotonic() - started
    (OUT / name).mkdir(parents=True, exist_ok=True)
    (OUT / name / "log.txt").write_bytes(child.stdout + child.stderr)
    done = DONE.search(child.stderr)
    executions = int(done.group(1)) if done else 0
    count_file = OUT / name / "uncaught"
    uncaught = int(count_file.read_text()) if count_file.exists() else -1
    return name, executions, uncaught, seconds, child.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        fuzz_one(args.one, args.runs)
        return 0
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from fuzz.decoder_targets import TARGETS

    names = args.targets or list(TARGETS)
    failed = False
    print(f"fuzz: {len(names)} decoders, {args.runs:,} executions each", flush=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for name, executions, uncaught, seconds, code in pool.map(
            lambda n: run_target(n, args.runs), names
        ):
            rate = executions / seconds if seconds else 0.0
            print(
                f"{name:<18} executions={executions:>10,} uncaught={uncaught}"
                f" seconds={seconds:7.1f} exec_per_s={rate:8.0f} exit={code}",
                flush=True,
            )
            failed |= uncaught != 0 or executions < args.runs or code != 0
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
