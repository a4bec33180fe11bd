"""Shared pytest configuration: the `--regen-goldens` option of the golden-file tests, one
torch thread, and a private dgmc cache per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-goldens", action="store_true", default=False,
        help="rewrite tests/bad/*.err and tests/golden/*.ir.json from the current compiler instead of comparing",
    )


@pytest.fixture
def regen_goldens(request: pytest.FixtureRequest) -> bool:
    """True when the run should rewrite golden files rather than compare against them."""
    return bool(request.config.getoption("--regen-goldens"))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread, as the CLI defaults to: the models under test are small, and
    a second thread competing with other work on a 2-core machine slows them down."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Each test module's own dgmc cache (mnist1d, feature classifiers), never the user's
    ~/.cache: what a module generates once it reuses, and no module sees another's files."""
    path = tmp_path_factory.mktemp("dgmc-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DGMC_CACHE", str(path))
        yield path


HM_RUN = ["--quick", "--no-progress", "--seeds", "0", "1", "--methods", "ours", "scratch", "--lambdas", "1", "10"]
"""The quick grid of `hm_run`: two seeds of ours at two lambdas and of scratch."""


@pytest.fixture(scope="session")
def hm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quick `dgmc run specs/hm.dgm` (HM_RUN), made once for the modules that read one
    (its directory, its teacher, its students); none of them may write into it."""
    from dgmc.cli import main

    out = tmp_path_factory.mktemp("hm_run")
    assert main(["run", str(Path(__file__).resolve().parents[1] / "specs/hm.dgm"), "--out", str(out), *HM_RUN]) == 0
    return out
