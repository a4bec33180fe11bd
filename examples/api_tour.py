"""A tour of the Python API on the Helmholtz machine of the paper (runs in seconds): spec
-> typed graph -> trained teacher -> a student distilled without data -> samples, their
distributions, the held-out objective -> an ONNX file and a checkpoint loaded back.
docs/API.md describes each function.

    python examples/api_tour.py [OUT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

import dgmc
from dgmc.losses import describe

SPEC = Path(__file__).resolve().parents[1] / "specs" / "hm.dgm"


def main(out: Path) -> None:
    torch.set_num_threads(1)
    model = dgmc.load(SPEC)                                  # parse + check: the typed, frozen graph IR
    print("order:", " -> ".join(model.order))
    print(describe(model))                                   # the generated loss, one term per node

    teacher = dgmc.train(model, steps=200)                   # an nn.Module, trained on Old Faithful
    student = dgmc.distill(model, teacher, width=0.25, steps=200)   # data-free, by the unified loss
    print(f"test -ELBO: teacher {dgmc.evaluate(teacher):.3f}, student {dgmc.evaluate(student):.3f} (its own "
          f"distilled guide), {dgmc.evaluate(student, guide=teacher):.3f} (the teacher's guide); exact NLL "
          f"{-dgmc.log_likelihood(student).mean():.3f}")

    values = dgmc.sample(student, 4, seed=0)                 # node -> tensor [4, size]
    print("y1 samples:", [round(v, 3) for v in values["y1"].flatten().tolist()])
    laws = dgmc.distributions(student, values)               # torch.distributions, given the parents
    print("log p(y1 | z1):", [round(v, 3) for v in laws["y1"].log_prob(values["y1"]).tolist()])

    again = dgmc.sample(student, 4, noise={"y1": torch.zeros(4, 1)}, seed=0)   # y1 on given noise
    print("y1 at its conditional mean:", [round(v, 3) for v in again["y1"].flatten().tolist()])
    try:
        dgmc.sample(student, 4, noise={"y1": torch.zeros(4, 2)})
    except dgmc.UserError as error:                          # a wrong shape is named, not a matmul error
        print("refused:", error)

    try:
        print("exported:", dgmc.export(student, out / "student.onnx"))
    except dgmc.UserError as error:                          # ONNX needs pip install 'dgmc[export]'
        print("not exported:", error)
    dgmc.export(student, out / "student.jit.pt", format="torchscript")

    (out / "run").mkdir(exist_ok=True)                      # a checkpoint beside its spec, as in a run directory
    (out / "run" / "spec.dgm").write_text(SPEC.read_text())
    dgmc.save_checkpoint(student, out / "run" / "student.pt")
    loaded = dgmc.load_checkpoint(out / "run" / "student.pt")
    same = dgmc.sample(loaded, 4, seed=0)
    print("loaded back, same samples:", all(torch.equal(same[k], values[k]) for k in values))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
