"""Scale-out on this machine's CPUs: the wall time of `dgmc run --jobs 1` and `--jobs 2`,
and of one student distilled by 1 and 2 torch.distributed processes; written into
docs/SCALING.md between `<!-- begin scaling -->` and `<!-- end scaling -->`.

    python bench/scaling.py --write docs/SCALING.md      # hm and vae, the specs' whole grids
    python bench/scaling.py --specs hm --quick           # a smoke version (--quick runs)

Per spec, the teacher is trained once (`dgmc train`, timed); then `dgmc run --teacher` with
each --jobs value distills and evaluates the whole grid (every width x method x lambda x
seed) into a fresh directory, timed from outside. The runs' metrics are compared too:
--jobs must not change a number. Then one student (`ours`, the first width) is distilled
by `dgmc distill` on 1 process and under `--nproc 2` (DDP, gloo).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from perf import machine, write_block  # noqa: E402


def timed(*args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dgmc", *args, "--no-progress"], capture_output=True, text=True,
                          cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"dgmc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start


def metrics(out: Path) -> list[dict]:
    rows = json.loads((out / "metrics.json").read_text())
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def one_spec(spec: str, jobs: list[int], quick: bool, tmp: Path) -> tuple[list[str], str]:
    """The --jobs rows of `spec`, and its DDP row."""
    path = f"specs/{spec}.dgm"
    quick_flag = ["--quick"] if quick else []
    teacher_dir = tmp / f"{spec}_teacher"
    teacher_s = timed("train", path, "--out", str(teacher_dir), *quick_flag)
    teacher = str(teacher_dir / "teacher.pt")
    walls, results = {}, {}
    for n in jobs:
        out = tmp / f"{spec}_jobs{n}"
        walls[n] = timed("run", path, "--out", str(out), "--teacher", teacher, "--jobs", str(n), *quick_flag)
        results[n] = metrics(out)
    students = len(results[jobs[0]]) - 1
    same = all(results[n] == results[jobs[0]] for n in jobs)
    rows = [f"| {spec} | {students} | {teacher_s:.1f} | {n} | {walls[n]:.1f} | {walls[jobs[0]] / walls[n]:.2f} | "
            f"{'yes' if same else 'NO'} |" for n in jobs]
    one = timed("distill", path, "--teacher", teacher, "--out", str(tmp / f"{spec}_ddp1"), *quick_flag)
    two = timed("distill", path, "--teacher", teacher, "--out", str(tmp / f"{spec}_ddp2"), "--nproc", "2",
                *quick_flag)
    ddp = f"| {spec} | ours, width x{first_width(spec):g} | {one:.1f} | {two:.1f} | {one / two:.2f} |"
    return rows, ddp


def first_width(spec: str) -> float:
    sys.path.insert(0, str(ROOT))
    import dgmc

    return dgmc.load(ROOT / f"specs/{spec}.dgm").distill.widths[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=["hm", "vae"])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="--quick runs: a smoke version")
    parser.add_argument("--write", type=Path, metavar="MD")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as every dgmc command here runs (its default --threads 1)
    started = time.perf_counter()
    grid, ddp = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.specs:
            rows, line = one_spec(spec, args.jobs, args.quick, Path(tmp))
            grid += rows
            ddp.append(line)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    when = time.strftime("%d %b %Y, %H:%M UTC", time.gmtime())
    flags = " ".join(sys.argv[1:])
    report = "\n".join([
        f"Run of {when}, commit {commit}: `python bench/scaling.py {flags}`, {time.perf_counter() - started:.0f} s"
        + (" (--quick: smoke runs, not the specs' step counts)" if args.quick else "") + ".", "",
        *(f"- {line}" for line in machine()), "",
        "`dgmc run SPEC --teacher T --jobs N`: the whole grid of students, then the evaluation and the report.", "",
        "| spec | students | teacher s (`dgmc train`, once) | --jobs | run s | speed-up vs --jobs "
        f"{args.jobs[0]} | same metrics |",
        "|---|---:|---:|---:|---:|---:|---|", *grid, "",
        "`dgmc distill SPEC --teacher T` on 1 process and with `--nproc 2` (DDP over gloo, the same global batch):", "",
        "| spec | student | 1 process s | 2 processes s | speed-up |", "|---|---|---:|---:|---:|", *ddp])
    print(report)
    if args.write:
        write_block(args.write, report, "scaling")


if __name__ == "__main__":
    main()
