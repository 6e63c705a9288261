"""DistributedDataParallel on the CPU: 2 gloo processes train like 1 process on the same batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from tiny_model import TinyVGG

from course.data import synthetic_cifar10
from course.training import TrainConfig
from solutions.fast.ddp import launch_local, parse_args
from solutions.protocols import Protocol

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built")


def _train_tiny(trainable: str, augment: bool) -> dict:
    """Train TinyVGG on synthetic data with the fast path; run in 1 process or in each rank.

    Dropout is off: masks are drawn per rank, so only without dropout can 2 ranks reproduce
    1 process step for step (see solutions.fast.ddp).
    """
    from solutions.fast import train_protocol_fast

    protocol = Protocol(
        name="tiny",
        description="TinyVGG test protocol (random weights, synthetic data)",
        size=36,
        augment=augment,
        normalization="imagenet",
        trainable=trainable,  # type: ignore[arg-type]
        pretrained=False,
    )
    torch.manual_seed(0)
    model = TinyVGG(dropout=0.0)
    if trainable == "fc":
        model.features.requires_grad_(False)
    config = TrainConfig(
        epochs=2, batch_size=16, lr=0.05, device="cpu", progress=False, verbose=False, seed=7
    )
    splits = synthetic_cifar10(per_class=8, seed=3)  # 80 images a split: 5 steps an epoch
    history, model = train_protocol_fast(
        protocol, splits, model, config, cache_dtype="float32", eval_batch_size=32
    )
    return {
        "valid_acc": history.valid_acc,
        "test_acc": history.test_acc,
        "steps": len(history.minibatch_loss),
        "params": torch.cat([p.detach().flatten() for p in model.parameters()]).tolist(),
        "world": dist.get_world_size() if dist.is_initialized() else 1,
    }


CASES = {
    "images": ("all", True),  # images on the device, random crops shared across ranks
    "cache": ("fc", False),  # cached features: rank 0 builds the cache, rank 1 maps it
}


def _train_cases() -> dict[str, dict]:
    return {case: _train_tiny(*args) for case, args in CASES.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every case in 1 process here and in 2 spawned gloo processes (one spawn: imports cost)."""
    single = _train_cases()
    result = tmp_path_factory.mktemp("ddp") / "rank0.json"
    double = launch_local(_train_cases, world_size=2, result_path=result)
    return {"single": single, "double": double}


@pytest.mark.slow  # two spawned processes import torch: ~30 s on 2 busy cores
@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_train_like_one_with_the_same_global_batch(case: str, runs: dict) -> None:
    single, double = runs["single"][case], runs["double"][case]
    assert single["world"] == 1 and double["world"] == 2
    assert double["steps"] == single["steps"] == 10
    # The same global batches and averaged gradients: the same weights, up to summation order.
    torch.testing.assert_close(
        torch.tensor(double["params"]), torch.tensor(single["params"]), rtol=1e-4, atol=1e-5
    )
    assert double["valid_acc"] == pytest.approx(single["valid_acc"], abs=1.25)  # one image of 80
    assert double["test_acc"] == pytest.approx(single["test_acc"], abs=1.25)
    # It trained: the weights moved away from their initialization.
    torch.manual_seed(0)
    init = torch.cat([p.detach().flatten() for p in TinyVGG(dropout=0.0).parameters()])
    assert not torch.allclose(torch.tensor(single["params"]), init)


def test_torchrun_command_line_defaults_are_the_lecture_settings() -> None:
    args = parse_args(["--protocol", "scratch"])
    assert (args.protocol, args.epochs, args.batch_size, args.seed) == ("scratch", 50, 256, 123)
    assert not args.no_cache and not args.compile


@pytest.mark.slow  # two torchrun workers each build a (random) VGG16: ~25 s on 2 cores
def test_torchrun_trains_a_protocol_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "history.json"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "solutions.fast.ddp", "--protocol", "linear-probe", "--weights", "random",
        "--size", "32", "--data", "synthetic", "--subset", "2", "--epochs", "1",
        "--batch-size", "8", "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "COURSE_CACHE_DIR": str(tmp_path / "cache"), "COURSE_OFFLINE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 ranks, weights: random" in done.stdout
    history = json.loads(out.read_text())
    assert len(history["valid_acc"]) == 1 and history["test_acc"] is not None
    # Rank 0 built the cache of fc6 features for the three splits; rank 1 reused it.
    assert len(list((tmp_path / "cache" / "features").glob("*/header.json"))) == 3
