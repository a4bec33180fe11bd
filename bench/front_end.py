"""Time the front end (parse, check, order) on generated specs of growing size.

    python bench/front_end.py                 # 1000, 3000 and 10000 nodes
    python bench/front_end.py --nodes 500 2000 --repeat 5

Each generated spec is a layered DAG: latent and observed nodes with 1-3 parents from
the previous layers, networks on every edge statement, a guide edge for every latent,
data-free, so the numbers measure the language front end alone. Prints the best of
`--repeat` runs per stage and the time per node.
"""

from __future__ import annotations

import argparse
import random
import time

import dgmc
from dgmc.check import check
from dgmc.frontend.parse import parse
from dgmc.ir.order import build, topological_order


def generate(nodes: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = ["model big {", "  const H = 32"]
    names = [f"n{i}" for i in range(nodes)]
    for i, name in enumerate(names):
        kind = "observed" if i % 4 == 3 else "latent"
        lines.append(f"  {kind} {name} : Normal[{rng.choice(['H', '4', '8'])}]")
    guide = []
    for i, name in enumerate(names[1:], start=1):
        parents = rng.sample(names[max(0, i - 50):i], k=min(i, rng.randint(1, 3)))
        lines.append(f"  {', '.join(parents)} -> {name} via mlp(H)")
    for i, name in enumerate(names):
        if i % 4 != 3:
            guide.append(f"    {names[i + 1] if i + 1 < nodes else names[0]} -> {name}")
    lines += ["  guide {", *guide, "  }", "}"]
    return "\n".join(lines) + "\n"


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dgmc.loads("model warm { observed x : Normal[1] }")  # build the parser once
    print(f"{'nodes':>7} {'lines':>7} {'parse s':>9} {'check s':>9} {'order s':>9} {'total s':>9} {'us/node':>9}")
    for nodes in args.nodes:
        text = generate(nodes)
        spec = parse(text)
        model = dgmc.loads(text)
        rank = {n.name: i for i, n in enumerate(model.nodes)}
        graph = build(rank, [(p.name, n.name, p.lag) for n in model.nodes for p in n.parents])
        t_parse = best(lambda text=text: parse(text), args.repeat)
        t_check = best(lambda spec=spec, text=text: check(spec, text, "big.dgm"), args.repeat)
        t_order = best(lambda graph=graph, rank=rank: topological_order(graph, rank), args.repeat)
        total = t_parse + t_check
        print(f"{nodes:>7} {text.count(chr(10)):>7} {t_parse:>9.3f} {t_check:>9.3f} {t_order:>9.3f} "
              f"{total:>9.3f} {total / nodes * 1e6:>9.0f}")
    print("check includes ordering and lint; order is the networkx topological sort alone.")


if __name__ == "__main__":
    main()
