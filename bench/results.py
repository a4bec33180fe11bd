"""Regenerate docs/RESULTS.md: every experiment of the paper reproduced on offline data,
measured by the committed code.

    python bench/results.py                   # everything, 2 experiments at a time
    python bench/results.py --only hm vrnn    # a selection (the others' blocks are kept)
    python bench/results.py --quick           # a smoke run into runs/results_quick; RESULTS.md untouched
    python bench/results.py --report-only     # run nothing: refill RESULTS.md from the finished runs
    python bench/results.py --reproduce hvae_lambda   # run one experiment again, fresh: the same bytes?

Each experiment is one `dgmc` command (listed in RESULTS.md); they run as subprocesses,
`--jobs` at a time, one torch thread each, into runs/results/<name> (a finished part is
reused: delete a directory, or pass --fresh, to measure it again). Then the generated
blocks of RESULTS.md, between `<!-- begin NAME -->` and `<!-- end NAME -->`, are replaced
by the tables of each run's report (rewritten from its metrics.json and eval.json first,
so that the report's present code renders them), and the findings blocks by what
`findings.py` computes from the runs. The prose around the blocks holds no figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import findings

from dgmc.evaluation.stats import RULE

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "RESULTS.md"
PICTURES = ROOT / "docs" / "results"
DEPTHS = (2, 4, 8)
TEN_SEEDS = [str(seed) for seed in range(10)]
STAGES = ("0.25", "0.75")  # staged's share on local, besides the default 0.5 of the depth sweep
EXPERIMENTS = {  # name -> the dgmc command, longest first (they are scheduled in this order)
    "vrnn": ["run", "specs/vrnn.dgm"],
    # the depth sweep: staged vs ours vs local at two student widths
    **{f"hvae_depth{d}": ["run", f"specs/hvae_depth{d}.dgm", "--widths", "0.1", "0.25",
                          "--methods", "ours", "local", "staged"] for d in (8, 4)},
    "hvae": ["run", "specs/hvae.dgm"],
    # the Helmholtz machine over 10 seeds, scored by its exact log-likelihood
    "hm": ["run", "specs/hm.dgm", "--seeds", *TEN_SEEDS, "--lambdas", "1", "--methods", "ours", "local", "staged",
           "scratch"],
    "hvae_depth2": ["run", "specs/hvae_depth2.dgm", "--widths", "0.1", "0.25", "--methods", "ours", "local", "staged"],
    "continual": ["continual", "specs/cvae.dgm"],
    # the same without reviving dead units: the evidence for `revive`'s default
    "hm_no_revive": ["run", "specs/hm.dgm", "--seeds", *TEN_SEEDS, "--lambdas", "1", "--methods", "ours", "local",
                     "--revive", "0", "--teacher", "runs/results/hm/teacher/teacher.pt"],
    # staged's share on local: the deepest hierarchy's smallest students at 0.25 and 0.75
    **{f"staged_{share}": ["run", "specs/hvae_depth8.dgm", "--widths", "0.1", "--methods", "staged",
                           "--stage", share, "--teacher", "runs/results/hvae_depth8/teacher/teacher.pt"]
       for share in STAGES},
    "hm_lambda": ["run", "specs/hm.dgm", "--methods", "ours", "--teacher", "runs/results/hm/teacher/teacher.pt"],
    # lambda ablations of ours at the smallest size (the teacher is retrained: same seed, same weights)
    "vrnn_lambda": ["run", "specs/vrnn.dgm", "--widths", "0.25", "--methods", "ours", "--lambdas", "0.1", "1"],
    "hvae_lambda": ["run", "specs/hvae.dgm", "--widths", "0.1", "--methods", "ours", "--lambdas", "1", "10"],
    # convolutions gain from a second thread, so these are best run alone (--only conv_vae --jobs 1)
    "m2": ["run", "specs/m2.dgm", "--methods", "ours", "local", "scratch"],
    # the VAE by the ELBO and by the importance-weighted bound, compared by IWAE-5000
    "iwae": ["run", "specs/iwae.dgm", "--methods", "ours", "scratch"],
    "vae": ["run", "specs/vae.dgm", "--widths", "0.25", "0.0625", "--methods", "ours", "scratch"],
    # the causal effect VAE: the treatment effect its teacher and students recover
    "cevae": ["run", "specs/cevae.dgm", "--methods", "ours", "scratch"],
    "classifier_tenth": ["run", "specs/classifier_tenth.dgm", "--methods", "ours", "scratch"],
    "conv_vae": ["run", "specs/conv_vae.dgm", "--threads", "2"],
    "conv_hvae": ["run", "specs/conv_hvae.dgm", "--threads", "2"],
    # staged vs ours vs local on the two-level conv VAE's smallest students (where ours and local differ)
    "conv_hvae_staged": ["run", "specs/conv_hvae.dgm", "--widths", "0.12", "--methods", "ours", "local", "staged",
                         "--teacher", "runs/results/conv_hvae/teacher/teacher.pt", "--threads", "2"],
}


def command(name: str, out: Path, quick: bool) -> list[str]:
    return ["dgmc", *EXPERIMENTS[name], "--out", str(out / name), "--no-progress", *(["--quick"] if quick else [])]


def run_one(name: str, out: Path, quick: bool, fresh: bool) -> tuple[str, float]:
    if fresh:
        shutil.rmtree(out / name, ignore_errors=True)
    argv = command(name, out, quick)
    dgmc = str(Path(sys.executable).with_name("dgmc"))
    started = time.perf_counter()
    log = out / f"{name}.log"
    out.mkdir(parents=True, exist_ok=True)
    with log.open("w") as file:
        code = subprocess.call([dgmc, *argv[1:]], cwd=ROOT, stdout=file, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - started
    print(f"{name}: exit {code} after {seconds:.0f} s ({log})", flush=True)
    if code:
        raise SystemExit(f"{' '.join(argv)} failed: see {log}")
    return name, seconds


def reproduce(name: str) -> str:
    """Run `name` again from nothing into runs/results_again and compare its eval.json and
    metrics.json (without wall times) with the run the page shows: the block saying so."""
    again = ROOT / "runs" / "results_again"
    run_one(name, again, quick=False, fresh=True)
    same = []
    for file in ("metrics.json", "eval.json"):
        first, second = (json.loads((base / name / file).read_text()) for base in (ROOT / "runs" / "results", again))
        same.append((file, _timeless(first) == _timeless(second)))
    verdict = "; ".join(f"{file} {'identical' if equal else 'DIFFERENT'}" for file, equal in same)
    return (f"`python bench/results.py --reproduce {name}` ran `{name}` again from nothing (its teacher included) on "
            f"{machine()}: {verdict} (wall times left out).")


def _timeless(value):
    """A run's record without its wall times (the one thing that may differ)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def tables(report: Path) -> str:
    """A run's report without its title and pictures, headings pushed two levels down."""
    text = report.read_text().split("\n## Pictures")[0]
    lines = text.splitlines()[1:]  # drop the title
    return "\n".join("##" + line if line.startswith("#") else line for line in lines).strip()


def hm_figure(out: Path) -> Path:
    """Samples of the HM teacher and students over Old Faithful, with KDE contours: one
    panel per model (seed 0), the data in the first."""
    import numpy as np
    import torch
    from matplotlib.figure import Figure
    from scipy.stats import gaussian_kde

    import dgmc
    from dgmc.datasets import load_split
    from dgmc.lower import compile_model
    from dgmc.training import checkpoint

    run = out / "hm"
    model = dgmc.load(run / "spec.dgm")
    split = load_split(model)
    data = torch.cat([torch.cat([split.train[n], split.test[n]]) for n in ("y1", "y2")], -1).numpy()
    panels = {"data (all 272 rows)": data}
    rows = json.loads((run / "metrics.json").read_text())
    for row in rows:
        if row["seed"] != 0:
            continue
        compiled = compile_model(model, None if row["model"] == "teacher" else row["width"])
        path = run / ("teacher/teacher.pt" if row["model"] == "teacher" else f"students/{row['name']}.pt")
        checkpoint.load(path, compiled)
        with torch.no_grad():
            trace = compiled.sample(1024, {}, torch.Generator().manual_seed(0))
        label = "teacher" if row["model"] == "teacher" else row["method"] + (
            f" λ={row['lambda']:g}" if row["method"] == "ours" else "")
        panels[label] = torch.cat([trace.values["y1"], trace.values["y2"]], -1).numpy()
    fig = Figure(figsize=(3.2 * 4, 3.0 * 2), layout="constrained")
    axes = fig.subplots(2, 4, sharex=True, sharey=True).ravel()
    grid = np.mgrid[-2.5:2.5:80j, -2.5:2.5:80j]
    for ax, (label, points) in zip(axes, panels.items(), strict=False):
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.3, linewidths=0)
        density = gaussian_kde(points.T)(grid.reshape(2, -1)).reshape(grid.shape[1:])
        ax.contour(grid[0], grid[1], density, levels=6, linewidths=0.8)
        ax.set_title(label, fontsize=10)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.supxlabel("eruptions (standardized)")
    fig.supylabel("waiting (standardized)")
    PICTURES.mkdir(parents=True, exist_ok=True)
    path = PICTURES / "hm_samples.png"
    fig.savefig(path, dpi=80)
    return path


def copy_pictures(out: Path, names: list[str]) -> None:
    """A few sample pictures of each experiment run now, into docs/results/ (the others'
    stay those of the run their tables come from)."""
    PICTURES.mkdir(parents=True, exist_ok=True)
    wanted = {"hvae": ["teacher/teacher_samples_x.png", "students/student_ours_w0.1_s0_samples_x.png",
                       "students/student_local_w0.1_s0_samples_x.png",
                       "students/student_scratch_w0.1_s0_samples_x.png"],
              "vrnn": ["teacher/teacher_sequences_x.png", "students/student_ours_w0.25_s0_sequences_x.png",
                       "students/student_local_w0.25_s0_sequences_x.png"]}
    for name, files in wanted.items():
        if name not in names:
            continue
        for file in files:
            source = out / name / file
            if source.is_file():
                shutil.copyfile(source, PICTURES / f"{name}_{Path(file).name}")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").is_file() else "?"
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}, torch {torch.__version__} (CPU), "
            f"{date.today().isoformat()}")


def machine_block(out: Path, timings: dict) -> str:
    """Each experiment's command, its last measured wall time and the machine that ran
    it, and the invocations of this script that produced the numbers on the page."""
    machines = timings.get("machines", {})
    commands = "\n".join(f"    {' '.join(command(n, out.relative_to(ROOT), False))}   "
                         f"# {timings['commands'][n]} s" for n in EXPERIMENTS if n in timings["commands"])
    where = "\n".join(f"- {machine}: {', '.join(n for n in EXPERIMENTS if machines.get(n) == machine)}"
                      for machine in dict.fromkeys(machines[n] for n in EXPERIMENTS if n in machines))
    runs = "\n".join(f"- {i['date']}, {', '.join(i['names'])} ({i['jobs']} jobs): {i['minutes']} min"
                      + (f" ({i['note']})" if i.get("note") else "") for i in timings["invocations"])
    return (f"The machines, and the experiments each made (one thread per experiment unless its command says "
            f"`--threads`):\n\n{where}\n\nThe commands, with the wall time of each (two running side by side "
            f"unless run alone, so each is slower than alone):\n\n{commands}\n\n"
            f"The invocations of `bench/results.py` behind this page:\n\n{runs}")


def measured(name: str, out: Path, timings: dict) -> str:
    """Where one experiment's numbers come from: its command, wall time and machine."""
    where = timings.get("machines", {}).get(name)
    if where is None:
        return ""
    seconds = timings["commands"].get(name, "?")
    return f"Measured by `{' '.join(command(name, out.relative_to(ROOT), False))}` ({seconds} s) on {where}.\n\n"


def conv_figure(out: Path, name: str) -> Path:
    """Samples of a conv experiment's teacher and of one student per method at each width,
    on the same noise: the means of p(x | parents), side by side (docs/results/NAME_samples.png)."""
    import numpy as np
    import torch
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from dgmc.lower import compile_model
    from dgmc.run import load_run_model
    from dgmc.training import checkpoint

    run = out / name
    model = load_run_model(run)
    widths = model.distill.widths
    panels = [("teacher", run / "teacher" / "teacher.pt", None)]
    panels += [(f"{method} x{w:g}", run / "students" / f"student_{method}_w{w:g}_s0.pt", w)
               for w in widths for method in model.distill.methods]
    fig = Figure(figsize=(2.0 * (1 + len(model.distill.methods)), 2.0 * (1 + len(widths))), layout="constrained")
    axes = fig.subplots(1 + len(widths), len(model.distill.methods), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for i, (label, path, width) in enumerate(panels):
        compiled = compile_model(model, width)
        checkpoint.load(path, compiled)
        with torch.no_grad():
            trace = compiled.eval().sample(16, generator=torch.Generator().manual_seed(7))
        means = compiled.families["x"].mean(trace.params["x"]).reshape(4, 4, 32, 32).numpy()
        grid = np.full((4 * 33 - 1, 4 * 33 - 1), np.nan)  # drawn in the background colour
        for r in range(4):
            for c in range(4):
                grid[r * 33: r * 33 + 32, c * 33: c * 33 + 32] = means[r, c]
        ax = axes[0, len(model.distill.methods) // 2] if i == 0 else axes.flat[len(model.distill.methods) + i - 1]
        ax.imshow(grid, cmap=colormaps["gray_r"].with_extremes(bad="#c8d4e3"), vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_title(label, fontsize=9)
    PICTURES.mkdir(parents=True, exist_ok=True)
    path = PICTURES / f"{name}_samples.png"
    fig.savefig(path, dpi=90)
    return path


def fill(text: str, name: str, block: str) -> str:
    pattern = re.compile(rf"(<!-- begin {name} -->\n)(?:.*?\n)?(<!-- end {name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{RESULTS} has no block '{name}'")
    return pattern.sub(lambda m: m.group(1) + block + "\n" + m.group(2), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(EXPERIMENTS), help="default: every experiment")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="delete earlier runs of the chosen experiments first")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rewrite RESULTS.md's blocks from the finished runs")
    parser.add_argument("--reproduce", choices=list(EXPERIMENTS), metavar="NAME",
                        help="run one finished experiment again from nothing and say whether it is the same")
    args = parser.parse_args()
    if args.reproduce:
        RESULTS.write_text(fill(RESULTS.read_text(), "reproduced", reproduce(args.reproduce)))
        print(f"wrote {RESULTS}")
        return
    out = ROOT / "runs" / ("results_quick" if args.quick else "results")
    names = args.only or list(EXPERIMENTS)
    record = out / "timings.json"
    timings = json.loads(record.read_text()) if record.is_file() else {"commands": {}, "invocations": []}
    if not args.report_only:
        started = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            seconds = dict(pool.map(lambda n: run_one(n, out, args.quick, args.fresh), names))
        total = time.perf_counter() - started
        print(f"all done in {total / 60:.1f} min", flush=True)
        if args.quick:
            return
        timings["commands"].update({n: round(s) for n, s in seconds.items()})
        timings.setdefault("machines", {}).update({n: machine() for n in names})
        timings["invocations"] = [i for i in timings["invocations"] if set(i["names"]) - set(names)]
        timings["invocations"].append({"names": names, "jobs": args.jobs, "minutes": round(total / 60, 1),
                                       "date": date.today().isoformat()})
        record.write_text(json.dumps(timings, indent=2))
    from dgmc.run import rewrite_report

    text = RESULTS.read_text()
    for name in names:
        if not (out / name / "report.md").is_file():  # not run yet: its block stays as it is
            continue
        if (out / name / "eval.json").is_file():
            rewrite_report(out / name)
        text = fill(text, name, measured(name, out, timings) + tables(out / name / "report.md"))
    finished = [n for n in EXPERIMENTS if findings.finished(out / n)]
    if len(finished) == len(EXPERIMENTS):  # the blocks over every experiment, only from a complete set of runs
        text = fill(text, "summary", findings.summary(out, finished))
        text = fill(text, "claims", findings.claims(out, finished))
        text = fill(text, "depth", findings.depth(out, DEPTHS))
        text = fill(text, "hm_exact", findings.helmholtz(out))
        text = fill(text, "stage", findings.stage(out, STAGES))
        text = fill(text, "elbo", findings.elbo(out, finished))
        text = fill(text, "machine", machine_block(out, timings))
    else:
        print(f"kept the blocks over every experiment: {len(EXPERIMENTS) - len(finished)} are not in {out}")
    if {"m2", "classifier_tenth"} <= set(finished):
        text = fill(text, "semi", findings.semi_supervised(out))
    if {"vae", "iwae"} <= set(finished):
        text = fill(text, "iwae_objectives", findings.iwae_objectives(out))
    if "cevae" in finished:
        text = fill(text, "effect", findings.causal_effect(out))
    drawn = [] if args.report_only else names  # the pictures are drawn by the invocation that ran
    if "hm" in drawn:
        hm_figure(out)
    for name in ("conv_vae", "conv_hvae"):
        if name in drawn:
            conv_figure(out, name)
    copy_pictures(out, drawn)
    text = fill(text, "rule", f"{RULE[0].upper()}{RULE[1:]}. Each verdict's line gives the mean paired difference "
                              "d, its standard deviation over the seeds, d in those standard deviations (the effect "
                              "size) and p.")
    RESULTS.write_text(text)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
