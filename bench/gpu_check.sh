#!/usr/bin/env bash
# The checks that need a GPU, as one prepared command for a lent CUDA machine (the
# `device` tool runs it in a copy of the repository; $OUT comes back):
#
#     bash bench/gpu_check.sh            # there; then, here:
#     python bench/gpu_timing.py --from OUT/gpu.md --write docs/PERFORMANCE.md
#
# 1. the suite's device tests (tests/test_device.py: every command with --device cuda, no
#    host sync inside a training or distillation step, generated code on the GPU equal
#    to the CPU's within float tolerance);
# 2. the step timings of bench/gpu_timing.py (VAE, HVAE, conv VAE teacher and
#    distillation steps; torch.compile with CUDA graphs).
# Nothing in CI depends on it.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())" || exit 1
python -m pip install -q --no-deps -e . >"$OUT/install.log" 2>&1 || cat "$OUT/install.log"
python -m pytest -q -p no:cacheprovider tests/test_device.py 2>&1 | tee "$OUT/tests.log"
tests=${PIPESTATUS[0]}
timeout 300 python bench/gpu_timing.py --out "$OUT/gpu.md" 2>&1 | tee "$OUT/timing.log"
exit "$tests"
