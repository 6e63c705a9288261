"""The prepared GPU check: everything a lent GPU should measure, in one call of ~8 minutes.

A session lent a GPU has about 15 minutes of device time: too little to write or debug a
script there. This one is written, and run on the CPU by the tests (``--dry-run``), before.
In one call it

1. records the device, torch, CUDA and cuDNN versions;
2. runs the CUDA tests (every test that is marked ``cuda`` or skips without CUDA);
3. measures the fast path (``solutions.fast``) for ``lecture-large`` (224 px, cached
   features), ``lecture-small`` (64 px, random crops) and ``scratch`` (64 px, every layer
   trains), in bf16, at full scale (45,000 / 5,000 / 10,000): per-epoch time after a warm-up
   epoch, images per second, cache build time, peak GPU memory; then the same with
   ``torch.compile``;
4. runs the naive path (the lecture's per-image transforms in a DataLoader) on a few batches
   of each, for the naive / fast epoch ratio on the same device in the same run;
5. runs ``lecture-large`` end to end for 50 epochs at full scale through ``run_protocol``;
6. trains the offline ImageNet MobileNetV2 for real (linear probe, then the last block), for a
   test accuracy measured on the GPU;
7. writes ``benchmarks/results/gpu-<device>-<date>.json`` after every stage and prints a
   table last.

The stages run in the order of :data:`STAGES`, the most wanted first (the compiled fast path
and the MobileNetV2 fine-tuning last), so a short budget loses the least.

Every figure is labelled: ``measured`` holds what this run timed or counted; ``projected``
holds what follows from those by arithmetic (50 epochs, full scale). A global time budget
(``--budget``, default 450 s) is checked before each stage and item: what would not fit is
skipped with its reason, and a stage still running when the budget ends is stopped, so the
JSON is always written.

    bash benchmarks/gpu_check.sh                        # on the device (see benchmarks/README.md)
    python benchmarks/gpu_check.py --prepare-inputs .gpu-inputs   # here, before the call
    python benchmarks/gpu_check.py --dry-run --data synthetic     # the same code on the CPU

The carried inputs (``--prepare-inputs``) are a CIFAR-10 subset (the full zips do not fit
the 64 MiB the device call carries), the TFLite file and the pure-Python ``tflite`` reader.
Where the carried training split is smaller than 45,000 images, the timing stages repeat its
images up to full scale (timing does not depend on pixel values; the JSON says so) and the
MobileNetV2 accuracy is measured on the distinct images only.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import datetime as dt
import functools
import gc
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ElementTree
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the device has no installed copy: import from the checkout
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

SCHEMA_VERSION = 1
#: The lecture's split sizes and epochs: what "full scale" means.
FULL = {"train": 45_000, "valid": 5_000, "test": 10_000}
EPOCHS = 50
#: Targets for 50 epochs at full scale, cache build included (issue 21). Printed, never asserted.
TARGET_SECONDS = {"lecture-large": 60.0, "lecture-small": 90.0, "scratch": 180.0}
FAST_PROTOCOLS = ("lecture-large", "lecture-small", "scratch")
#: Stages in the order they run: the most wanted first, so a short budget loses the least.
STAGES = (
    "environment",
    "data",
    "cuda_tests",
    "fast_path",
    "naive_path",
    "full_run",
    "mobilenet",
    "fast_path_compile",
    "mobilenet_last_block",
)
#: Seconds kept back at the end of the budget for writing the JSON and the table.
RESERVE_SECONDS = 5.0
#: Where the carried inputs go (ignored by git; named in the device call's ``carry``).
INPUTS_DIR = ".gpu-inputs"
#: Leave this much of the device call's 64 MiB for files the other helpers may add.
CARRY_LIMIT_MIB = 64
CARRY_MARGIN_MIB = 8


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big each stage runs: full scale on a GPU, tiny in the CPU dry run."""

    train: int  # training images per epoch
    valid: int
    test: int
    per_class: int | None  # images per class to load (None: all there are)
    batch_size: int
    eval_batch_size: int
    fast_epochs: int  # the first is the warm-up
    naive_batches: int  # timed batches of the naive path (after one warm-up batch)
    naive_workers: int
    full_run_epochs: int
    probe_epochs: int  # MobileNetV2 linear probe
    last_block_epochs: int
    size: int | None  # input side for every protocol; None: each protocol's own
    compile_backend: str | None  # None: torch.compile's default (inductor)
    estimates: dict[str, float]  # seconds each item is expected to take, before it runs


GPU_SCALE = Scale(
    train=FULL["train"],
    valid=FULL["valid"],
    test=FULL["test"],
    per_class=None,
    batch_size=256,
    eval_batch_size=1024,
    fast_epochs=3,
    naive_batches=10,
    naive_workers=min(8, max(1, (os.cpu_count() or 2) - 2)),
    full_run_epochs=EPOCHS,
    probe_epochs=EPOCHS,
    last_block_epochs=10,
    size=None,
    compile_backend=None,
    estimates={
        "data": 30,
        "cuda_tests": 90,
        "fast:lecture-large": 40,
        "fast:lecture-small": 30,
        "fast:scratch": 45,
        "compile_extra": 60,
        "naive": 25,
        "full_run": 60,
        "mobilenet": 30,
        "mobilenet_last_block": 60,
    },
)

DRY_SCALE = Scale(
    train=24,
    valid=16,
    test=20,
    per_class=2,
    batch_size=8,
    eval_batch_size=8,
    fast_epochs=2,
    naive_batches=2,
    naive_workers=0,
    full_run_epochs=2,
    probe_epochs=2,
    last_block_epochs=1,
    size=32,
    compile_backend="eager",  # dynamo traces; no C++ build on a 2-core CPU
    estimates={
        "data": 5,
        "cuda_tests": 15,
        "fast:lecture-large": 6,
        "fast:lecture-small": 6,
        "fast:scratch": 6,
        "compile_extra": 6,
        "naive": 6,
        "full_run": 10,
        "mobilenet": 8,
        "mobilenet_last_block": 8,
    },
)


class BudgetExhausted(Exception):
    """The global time budget ran out while a stage was running."""


class Skip(Exception):
    """A stage or item cannot run here; the message says why."""


# --- the one call into solutions.run (contract C5) -----------------------------------------


def run_and_read(protocol: Any, options: Any, splits: Any) -> dict[str, Any]:
    """Run ``protocol`` through ``solutions.run.run_protocol``; return its ``results.json``.

    The only place this script calls ``run_protocol``: it returns the run folder today and a
    ``RunRecord`` (with ``output_dir``) after issue 20, and both are handled here.
    """
    from solutions.run import run_protocol

    returned = run_protocol(protocol, options, splits)
    folder = Path(getattr(returned, "output_dir", returned))
    return json.loads((folder / "results.json").read_text())


# --- small helpers -----------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


@contextlib.contextmanager
def _env(**values: str | None) -> Iterator[None]:
    """Set (or unset, with ``None``) environment variables for the duration of a block."""
    old = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _compile_backend(backend: str | None) -> Iterator[None]:
    """Make ``torch.compile`` use ``backend`` inside the block (the dry run: ``"eager"``)."""
    if backend is None:
        yield
        return
    original = torch.compile
    torch.compile = functools.partial(original, backend=backend)  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.compile = original  # type: ignore[assignment]


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device: torch.device) -> dict[str, float]:
    """Peak GPU memory since the last reset (CUDA), else this process's peak RSS so far."""
    if device.type == "cuda":
        return {"peak_gpu_mb": torch.cuda.max_memory_allocated(device) / 2**20}
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# --- the run's state -------------------------------------------------------------------------


class Check:
    """One run of the check: the budget, the data, the models, and the report being written."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dry_run: bool = args.dry_run
        self.scale = DRY_SCALE if self.dry_run else GPU_SCALE
        self.started = time.monotonic()
        self.budget: float = args.budget
        self.device = torch.device("cpu" if self.dry_run else "cuda")
        self.work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
        self.real_splits: Any = None  # the distinct images loaded
        self.full_splits: Any = None  # the same, repeated up to full scale for timing
        self._models: dict[str, torch.nn.Module] = {}
        stamp = dt.datetime.now(dt.timezone.utc)
        self.report: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "benchmark": "benchmarks/gpu_check.py",
            "command": " ".join(["python", "benchmarks/gpu_check.py", *args.argv]),
            "started": _now(),
            "dry_run": self.dry_run,
            "device": "cpu",
            "budget_seconds": self.budget,
            "labels": {
                "measured": "timed or counted in this run, on this device",
                "projected": f"computed from measured figures: {EPOCHS} epochs at full scale "
                f"({FULL['train']:,} train / {FULL['valid']:,} valid per epoch, "
                f"{FULL['test']:,} test once)",
                "targets": "issue 21's targets for 50 epochs at full scale incl. the cache "
                "build; printed beside the figures, never asserted",
                "lecture": "the lecture's reported times (its notebooks, not measured here)",
            },
            "targets_seconds": dict(TARGET_SECONDS),
            "stages": {name: {"status": "pending"} for name in STAGES},
        }
        self.stamp = f"{stamp:%Y%m%d-%H%M}"
        self.out_path: Path | None = None
        self.items: list[dict[str, Any]] = []  # the running stage's finished items

    # time
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float:
        return self.budget - RESERVE_SECONDS - self.elapsed()

    def fits(self, key: str, extra: float = 0.0) -> None:
        """Raise :class:`Skip` when the item ``key`` is not expected to fit the budget."""
        need = self.scale.estimates[key] + extra
        left = self.remaining()
        if need > left:
            raise Skip(
                f"would need ~{need:.0f} s and {max(left, 0):.0f} s are left of the "
                f"{self.budget:.0f} s budget"
            )

    # data and models
    def size_for(self, protocol: Any) -> int:
        return self.scale.size or protocol.size

    def model_for(self, name: str) -> torch.nn.Module:
        """A fresh copy of the protocol's network (random weights, seed 123), built once.

        The dry run uses :func:`tiny_model` (VGG16's layout at toy width): VGG16 itself
        takes minutes on 2 CPU cores even at 32 px.
        """
        from solutions.protocols import get_protocol
        from solutions.run import prepare_model

        if name not in self._models:
            torch.manual_seed(123)
            protocol = get_protocol(name)
            build = tiny_model if self.dry_run else prepare_model
            self._models[name] = build(protocol, "random")
        return copy.deepcopy(self._models[name])

    @contextlib.contextmanager
    def stand_in_models(self) -> Iterator[None]:
        """In the dry run, make ``run_protocol`` build :func:`tiny_model` for VGG16 protocols.

        Patches ``prepare_model`` in every loaded ``solutions`` module that holds it (it moves
        between modules as ``solutions.run`` is split), and puts each back afterwards.
        """
        if not self.dry_run:
            yield
            return
        import solutions.run

        original = solutions.run.prepare_model

        def prepare(protocol: Any, weights: str, arch: str = "vgg16") -> torch.nn.Module:
            if arch == "vgg16" or protocol.trainable == "all":
                return tiny_model(protocol, weights)
            return original(protocol, weights, arch)

        holders = [
            module
            for name, module in list(sys.modules.items())
            if (name == "solutions" or name.startswith("solutions."))
            and getattr(module, "prepare_model", None) is original
        ]
        for module in holders:
            module.prepare_model = prepare
        try:
            yield
        finally:
            for module in holders:
                module.prepare_model = original

    # the report
    def write(self) -> Path:
        """Write the report (after every stage, so a killed run still leaves one)."""
        self.report["seconds"] = round(self.elapsed(), 1)
        self.report["finished"] = _now()
        out_dir = Path(self.args.out) if self.args.out else default_out_dir(self.dry_run)
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.out_path is None:
            name = "cpu-dry-run" if self.dry_run else _slug(self.report.get("gpu") or "cuda")
            self.out_path = out_dir / f"gpu-{name}-{self.stamp}.json"
        text = json.dumps(self.report, indent=2, default=str)
        self.out_path.write_text(text)
        if self.args.copy_to:
            copy_dir = Path(self.args.copy_to)
            copy_dir.mkdir(parents=True, exist_ok=True)
            (copy_dir / self.out_path.name).write_text(text)
        return self.out_path


def _tiny_vgg_class() -> type:
    """The test suite's ``TinyVGG`` (``solutions.fast.tiny`` until issue 20, then tests/)."""
    try:
        from solutions.fast.tiny import TinyVGG

        return TinyVGG
    except ImportError:
        import importlib.util

        path = ROOT / "tests" / "tiny_model.py"
        spec = importlib.util.spec_from_file_location("gpu_check_tiny_model", path)
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.TinyVGG


def tiny_model(protocol: Any, weights: str = "random") -> torch.nn.Module:
    """``TinyVGG`` with the protocol's parameters trainable (the dry run only).

    Same layout and cut points as VGG16 (the cache cut, the tail, the head), random weights.
    """
    model = _tiny_vgg_class()()
    if protocol.trainable != "all":
        model.requires_grad_(False)
        model.classifier[6].requires_grad_(True)  # the new head (the lecture's bug: only it)
        if protocol.trainable in ("fc", "last-block"):
            model.classifier[0].requires_grad_(True)
            model.classifier[3].requires_grad_(True)
    label = "random (TinyVGG stand-in for VGG16: CPU dry run)"
    try:  # typed weights (issue 20): the label is derived from weights_info
        from course.models import WeightsInfo, attach_weights_info

        attach_weights_info(model, WeightsInfo("random", label))
    except ImportError:
        model.weights_label = label
    return model


def default_out_dir(dry_run: bool) -> Path:
    """``benchmarks/results`` for a real run; a temporary folder for a dry run."""
    if dry_run:
        return Path(tempfile.gettempdir()) / "gpu-check-dry-run"
    return ROOT / "benchmarks" / "results"


# --- stages ------------------------------------------------------------------------------------


def stage_environment(check: Check) -> dict[str, Any]:
    """The device and the versions every figure depends on."""
    import torchvision

    from course.quick import machine_label

    info: dict[str, Any] = {
        "machine": machine_label(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "load_average": list(os.getloadavg()),
    }
    if check.device.type == "cuda":
        props = torch.cuda.get_device_properties(check.device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
            compute_capability=f"{props.major}.{props.minor}",
        )
        check.report["gpu"] = props.name
        check.report["device"] = f"cuda: {props.name}"
    return {"measured": {}, "info": info}


def stage_data(check: Check) -> dict[str, Any]:
    """Load CIFAR-10 (real when found, else synthetic, labelled) and scale it for timing."""
    from course.data import load_cifar10, synthetic_cifar10
    from course.errors import DataError

    check.fits("data")
    scale = check.scale
    start = time.perf_counter()
    source = check.args.data
    try:
        splits = load_cifar10(source, subset=scale.per_class)
        note = "real CIFAR-10 (the course's JPEG copy or a subset of it)"
    except DataError as err:
        if source is not None:  # a source named and wrong: say so, never time stand-ins
            raise
        splits = synthetic_cifar10(scale.per_class or 5000)
        note = f"synthetic stand-in images, NOT CIFAR-10 ({err.problem.splitlines()[0]})"
    if splits.synthetic and "synthetic" not in note:
        note = "synthetic stand-in images, NOT CIFAR-10 (asked for with --data synthetic)"
    seconds = time.perf_counter() - start
    check.real_splits = splits
    check.full_splits = repeat_to(splits, {"train": scale.train, "valid": scale.valid})
    sizes = {n: len(getattr(splits, n).labels) for n in ("train", "valid", "test")}
    timed = {n: len(getattr(check.full_splits, n).labels) for n in ("train", "valid", "test")}
    repeated = {n: timed[n] != sizes[n] for n in timed}
    return {
        "measured": {"load_seconds": seconds},
        "info": {
            "data": note,
            "source": splits.source,
            "synthetic": splits.synthetic,
            "distinct_images": sizes,
            "timed_images": timed,
            "repeated_to_scale": repeated,
            "note": "timing stages use timed_images (distinct images repeated where "
            "repeated_to_scale says so: timing does not depend on pixel values); accuracies "
            "come from the distinct images only, except full_run, which runs at timed_images",
        },
    }


def repeat_to(splits: Any, sizes: dict[str, int]) -> Any:
    """``splits`` with the named splits repeated (or cut) to exactly ``sizes`` images."""
    from course.data import ImageSplit

    changed = {}
    for name, n in sizes.items():
        split = getattr(splits, name)
        have = len(split.labels)
        if have == n or have == 0:
            continue
        index = torch.arange(n) % have
        changed[name] = ImageSplit(split.images[index], split.labels[index], name)
    if not changed:
        return splits
    fingerprint = f"{splits.fingerprint}-x" + "-".join(f"{k}{v}" for k, v in sorted(sizes.items()))
    return dataclasses.replace(splits, **changed, fingerprint=fingerprint)


def stage_cuda_tests(check: Check) -> dict[str, Any]:
    """Run every CUDA test (marked ``cuda``, or skipped without CUDA) in a pytest subprocess."""
    check.fits("cuda_tests")
    files = cuda_test_files()
    xml = check.work / "cuda-tests.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "benchmarks"), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rs",
        "-p",
        "gpu_check",
        "-p",
        "no:cacheprovider",
        f"--junitxml={xml}",
        *[str(f.relative_to(ROOT)) for f in files],
    ]
    start = time.perf_counter()
    timeout = max(10.0, check.remaining() - 2)
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as err:
        raise BudgetExhausted(f"the CUDA tests ran past {timeout:.0f} s") from err
    seconds = time.perf_counter() - start
    print(done.stdout[-3000:], done.stderr[-2000:], sep="\n", flush=True)
    counts = junit_counts(xml) if xml.is_file() else {}
    node_ids = [case for case in counts.pop("cases", [])]
    measured = {"seconds": seconds, **{k: v for k, v in counts.items() if k != "cases"}}
    failed = done.returncode not in (0, 5) or counts.get("failed", 0) or counts.get("errors", 0)
    result: dict[str, Any] = {
        "measured": measured,
        "info": {
            "command": " ".join(command[1:]),
            "files": [str(f.relative_to(ROOT)) for f in files],
            "tests": node_ids,
            "returncode": done.returncode,
        },
    }
    if failed:
        result["status"] = "failed"
        result["error"] = f"pytest exited {done.returncode}: {done.stdout[-1500:]}"
    return result


def cuda_test_files() -> list[Path]:
    """Test files that can hold a CUDA test: those that mention CUDA at all (cheap to collect)."""
    return sorted(
        path
        for path in (ROOT / "tests").glob("test_*.py")
        if re.search(r"torch\.cuda|mark\.cuda", path.read_text(encoding="utf-8"))
    )


def junit_counts(xml: Path) -> dict[str, Any]:
    """Passed, failed, errors and skipped from a JUnit XML file, and each test's id."""
    root = ElementTree.parse(xml).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    totals = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        totals["tests"] += int(suite.get("tests", 0))
        totals["failed"] += int(suite.get("failures", 0))
        totals["errors"] += int(suite.get("errors", 0))
        totals["skipped"] += int(suite.get("skipped", 0))
    totals["passed"] = totals["tests"] - totals["failed"] - totals["errors"] - totals["skipped"]
    cases = [f"{c.get('classname')}::{c.get('name')}" for c in root.iter("testcase")]
    return {**totals, "cases": cases}


# pytest plugin (``-p gpu_check``): keep the CUDA tests only.
CUDA_REASON = re.compile(r"\b(cuda|gpu)\b", re.IGNORECASE)


def needs_cuda(item: Any) -> bool:
    """True for a test marked ``cuda``, or one with a ``skipif`` whose reason names CUDA/GPU."""
    if item.get_closest_marker("cuda") is not None:
        return True
    return any(
        CUDA_REASON.search(str(mark.kwargs.get("reason", "")))
        for mark in item.iter_markers("skipif")
    )


def pytest_configure(config: Any) -> None:
    """Register the ``cuda`` marker (the plugin is loaded only by this script)."""
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU (benchmarks/gpu_check.py)")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Deselect every test that does not need CUDA."""
    keep = [item for item in items if needs_cuda(item)]
    dropped = [item for item in items if not needs_cuda(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


def _train_config(check: Check, epochs: int) -> Any:
    from course.training import TrainConfig

    return TrainConfig(
        epochs=epochs,
        batch_size=check.scale.batch_size,
        seed=123,
        device=str(check.device),
        progress=False,
        verbose=False,
    )


def measure_fast(check: Check, name: str, compile: bool) -> dict[str, Any]:
    """Train ``name`` the fast way for a few epochs at the timing scale; time every part."""
    from solutions.fast import train_protocol_fast
    from solutions.protocols import get_protocol

    protocol = get_protocol(name)
    check.fits(f"fast:{name}", check.scale.estimates["compile_extra"] if compile else 0.0)
    splits = check.full_splits
    model = check.model_for(name)
    cache_root = check.work / f"cache-{name}-{'compiled' if compile else 'eager'}"
    epochs = check.scale.fast_epochs
    _peak_reset(check.device)
    with _env(COURSE_CACHE_DIR=str(cache_root)), _compile_backend(check.scale.compile_backend):
        _sync(check.device)
        start = time.perf_counter()
        history, _ = train_protocol_fast(
            protocol,
            splits,
            model,
            _train_config(check, epochs),
            size=check.size_for(protocol),
            eval_batch_size=check.scale.eval_batch_size,
            compile=compile,
        )
        _sync(check.device)
        total = time.perf_counter() - start
    peak = _peak(check.device)
    headers = [json.loads(p.read_text()) for p in cache_root.glob("features/*/header.json")]
    build = sum(h["seconds"] for h in headers) if headers else None
    shutil.rmtree(cache_root, ignore_errors=True)
    del model
    epoch_seconds = list(history.epoch_seconds)
    warm, steady = epoch_seconds[0], epoch_seconds[1:] or epoch_seconds
    steady_mean = sum(steady) / len(steady)
    n = {s: len(getattr(splits, s).labels) for s in ("train", "valid", "test")}
    measured = {
        "epochs": len(epoch_seconds),
        "epoch_seconds": epoch_seconds,
        "first_epoch_seconds": warm,
        "epoch_seconds_after_warmup": steady_mean,
        "images_per_second": (n["train"] + n["valid"]) / steady_mean,
        "cache_build_seconds": build,
        "one_time_seconds": total - sum(epoch_seconds),
        "total_seconds": total,
        "test_acc": history.test_acc,
        **peak,
    }
    return {
        "protocol": name,
        "compile": compile,
        "size": check.size_for(protocol),
        "cached": protocol.cacheable,
        "images": n,
        "measured": measured,
        "projected": project_fast(measured, n, protocol.cacheable),
        "lecture_minutes": protocol.lecture.minutes_50_epochs if protocol.lecture else None,
        "target_seconds": TARGET_SECONDS.get(name),
    }


def project_fast(measured: dict[str, Any], n: dict[str, int], cached: bool) -> dict[str, float]:
    """50 epochs at full scale, from one run's measured parts (each scaled by its own images).

    = cache build x (60,000 / images cached) + the warm-up epoch's extra time (compilation,
    cuDNN's search: not scaled) + 50 x the steady epoch x (50,000 / images per epoch) + the
    rest of the one-time work (model to device, test pass) x (10,000 / test images).
    """
    per_epoch = n["train"] + n["valid"]
    epoch = measured["epoch_seconds_after_warmup"] * (FULL["train"] + FULL["valid"]) / per_epoch
    build = measured["cache_build_seconds"] or 0.0
    build_full = build * sum(FULL.values()) / sum(n.values()) if cached else 0.0
    other = max(0.0, measured["one_time_seconds"] - build) * FULL["test"] / max(1, n["test"])
    warm_extra = max(0.0, measured["first_epoch_seconds"] - measured["epoch_seconds_after_warmup"])
    return {
        "epoch_seconds": epoch,
        "cache_build_seconds": build_full,
        "total_50_epochs_seconds": build_full + warm_extra + EPOCHS * epoch + other,
    }


def stage_fast_path(check: Check, compile: bool = False) -> dict[str, Any]:
    """``measure_fast`` for each protocol; an item that does not fit is skipped alone."""
    items = check.items
    for name in FAST_PROTOCOLS:
        items.append(_item(name, lambda name=name: measure_fast(check, name, compile)))
    return {"items": items}


def _item(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one item; a skip or an error is recorded in the item, not raised."""
    try:
        result = fn()
        result.setdefault("status", "ok")
        return result
    except Skip as why:
        print(f"  {name}: skipped ({why})", flush=True)
        return {"protocol": name, "status": "skipped", "reason": str(why)}
    except BudgetExhausted:
        raise
    except Exception as err:  # a broken item must not lose the others' figures
        traceback.print_exc()
        return {"protocol": name, "status": "failed", "error": f"{type(err).__name__}: {err}"}
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the next item's peak memory is its own


def measure_naive(check: Check, name: str) -> dict[str, Any]:
    """The lecture's way on a few batches: per-image transforms in a DataLoader, full model."""
    from torch.utils.data import DataLoader

    from course.data import TransformedImages
    from course.training import autocast_for
    from solutions.protocols import get_protocol, normalization_for
    from solutions.transfer import build_transforms, make_optimizer

    check.fits("naive")
    protocol = get_protocol(name)
    device = check.device
    size = check.size_for(protocol)
    model = check.model_for(name).to(device)
    _, mean, std = normalization_for(protocol, model)
    train_tf, eval_tf = build_transforms(size, (mean, std), augment=protocol.augment)
    scale = check.scale
    common = dict(num_workers=scale.naive_workers, pin_memory=device.type == "cuda")
    splits = check.full_splits
    train = DataLoader(
        TransformedImages(splits.train, train_tf),
        batch_size=scale.batch_size,
        shuffle=True,
        **common,
    )
    valid = DataLoader(
        TransformedImages(splits.valid, eval_tf), batch_size=scale.eval_batch_size, **common
    )
    optimizer = make_optimizer(model, lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    _peak_reset(device)

    def steps(loader: Any, count: int, training: bool) -> tuple[int, float]:
        """Time ``count`` batches after one warm-up batch; return (images, seconds)."""
        model.train(training)
        seen, start = 0, 0.0
        for index, (inputs, labels) in enumerate(loader):
            if index == 1:
                _sync(device)
                start = time.perf_counter()
            inputs = inputs.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            with torch.set_grad_enabled(training), autocast_for(device, True):
                out = model(inputs)
                if training:
                    loss = loss_fn(out.float(), labels)
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if index >= 1:
                seen += len(labels)
            if index == count:
                break
        _sync(device)
        return seen, time.perf_counter() - start

    train_images, train_seconds = steps(train, scale.naive_batches, True)
    valid_images, valid_seconds = steps(valid, max(1, scale.naive_batches // 4), False)
    if train_images == 0 or valid_images == 0:
        raise Skip("too few images for a warm-up batch and a timed one")
    measured = {
        "train_images": train_images,
        "train_images_per_second": train_images / train_seconds,
        "valid_images": valid_images,
        "valid_images_per_second": valid_images / valid_seconds,
        "batch_size": scale.batch_size,
        "workers": scale.naive_workers,
        **_peak(device),
    }
    epoch = (
        FULL["train"] / measured["train_images_per_second"]
        + FULL["valid"] / (measured["valid_images_per_second"])
    )
    return {
        "protocol": name,
        "size": size,
        "measured": measured,
        "projected": {"epoch_seconds": epoch, "total_50_epochs_seconds": EPOCHS * epoch},
    }


def stage_naive_path(check: Check) -> dict[str, Any]:
    """``measure_naive`` for each protocol, with the naive / fast epoch ratio beside it."""
    fast = {
        item["protocol"]: item
        for item in check.report["stages"]["fast_path"].get("items", [])
        if item.get("status") == "ok"
    }
    items = check.items
    for name in FAST_PROTOCOLS:
        item = _item(name, lambda name=name: measure_naive(check, name))
        if item.get("status") == "ok" and name in fast:
            item["projected"]["epoch_ratio_naive_over_fast"] = (
                item["projected"]["epoch_seconds"] / fast[name]["projected"]["epoch_seconds"]
            )
        items.append(item)
    return {"items": items}


def stage_full_run(check: Check) -> dict[str, Any]:
    """``lecture-large`` end to end through ``run_protocol``: 50 epochs at the timing scale."""
    from solutions.protocols import get_protocol
    from solutions.run import RunOptions

    check.fits("full_run")
    protocol = get_protocol("lecture-large")
    options = RunOptions(
        epochs=check.scale.full_run_epochs,
        weights="auto",  # ImageNet VGG16 if torchvision's cache has it, else random (labelled)
        size=check.scale.size,
        device=str(check.device),
        batch_size=check.scale.batch_size,
        out=check.work / "runs",
        fast=True,
        progress=False,
    )
    _peak_reset(check.device)
    with _env(COURSE_CACHE_DIR=str(check.work / "cache-full-run")), check.stand_in_models():
        start = time.perf_counter()
        results = run_and_read(protocol, options, check.full_splits)
        wall = time.perf_counter() - start
    weights = str(results.get("weights", "unknown"))
    epoch_seconds = results.get("epoch_seconds") or []
    data = results.get("data") or {}
    measured = {
        "epochs": len(epoch_seconds),
        "wall_seconds": wall,
        "run_seconds": _num(results.get("total_seconds")),
        "epoch_seconds_mean": sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds else None,
        "test_acc": _num(results.get("test_acc")),
        "final_valid_acc": _num((results.get("valid_acc") or [None])[-1]),
        **_peak(check.device),
    }
    scale = sum(FULL.values()) / max(
        1, sum(int(data.get(s, 0)) for s in ("train", "valid", "test"))
    )
    epochs_factor = EPOCHS / max(1, len(epoch_seconds))
    return {
        "protocol": protocol.name,
        "measured": measured,
        "projected": {
            # Only in the dry run does this differ from the measured time (tiny data, 2 epochs).
            "total_50_epochs_seconds": (measured["run_seconds"] or wall) * scale * epochs_factor
        },
        "info": {
            "weights": weights,
            "accuracy_means": "transfer from ImageNet"
            if weights.startswith("imagenet")
            else "nothing about transfer: the frozen network has random weights (no ImageNet "
            "VGG16 here); the run times the whole pipeline end to end",
            "data": data,
            "path": results.get("path"),
            "device": results.get("device"),
        },
        "target_seconds": TARGET_SECONDS["lecture-large"],
        "lecture_minutes": protocol.lecture.minutes_50_epochs if protocol.lecture else None,
    }


def _mobilenet(check: Check, protocol_name: str, epochs: int, key: str) -> dict[str, Any]:
    """Train the offline ImageNet MobileNetV2 on the distinct real images; measure accuracy."""
    from course.models.offline_mobilenet import offline_weights_file
    from solutions.protocols import get_protocol
    from solutions.run import RunOptions

    check.fits(key)
    pretrained = check.args.pretrained
    with _env(COURSE_PRETRAINED_DIR=str(Path(pretrained).resolve()) if pretrained else None):
        if offline_weights_file() is None:
            raise Skip("no TFLite MobileNetV2 here (pass --pretrained DIR)")
        if check.real_splits.synthetic and not check.dry_run:
            raise Skip("no real CIFAR-10: an accuracy on synthetic images means nothing")
        options = RunOptions(
            epochs=epochs,
            arch="mobilenet_v2",
            weights="imagenet",
            size=check.scale.size,
            device=str(check.device),
            batch_size=check.scale.batch_size,
            out=check.work / "runs",
            fast=True,
            progress=False,
        )
        _peak_reset(check.device)
        start = time.perf_counter()
        results = run_and_read(get_protocol(protocol_name), options, check.real_splits)
        wall = time.perf_counter() - start
    epoch_seconds = results.get("epoch_seconds") or []
    return {
        "protocol": protocol_name,
        "measured": {
            "epochs": len(epoch_seconds),
            "wall_seconds": wall,
            "run_seconds": _num(results.get("total_seconds")),
            "test_acc": _num(results.get("test_acc")),
            "final_valid_acc": _num((results.get("valid_acc") or [None])[-1]),
            **_peak(check.device),
        },
        "info": {
            "weights": results.get("weights"),
            "data": results.get("data"),
            "trainable_parameters": results.get("trainable_parameters"),
            "accuracy_means": "CPU dry run at tiny sizes: no meaning"
            if check.dry_run
            else "a real ImageNet network on real CIFAR-10 (the course's JPEG copy, "
            "carried subset): measured",
        },
    }


def stage_mobilenet(check: Check) -> dict[str, Any]:
    """The offline MobileNetV2, linear probe (head only, cached features)."""
    return _mobilenet(check, "linear-probe", check.scale.probe_epochs, "mobilenet")


def stage_mobilenet_last_block(check: Check) -> dict[str, Any]:
    """The offline MobileNetV2, its last block and the head fine-tuned."""
    return _mobilenet(check, "last-block", check.scale.last_block_epochs, "mobilenet_last_block")


STAGE_FUNCTIONS: dict[str, Callable[[Check], dict[str, Any]]] = {
    "environment": stage_environment,
    "data": stage_data,
    "cuda_tests": stage_cuda_tests,
    "fast_path": stage_fast_path,
    "naive_path": stage_naive_path,
    "full_run": stage_full_run,
    "mobilenet": stage_mobilenet,
    "fast_path_compile": functools.partial(stage_fast_path, compile=True),
    "mobilenet_last_block": stage_mobilenet_last_block,
}
#: Stages that need the data stage's splits.
NEEDS_DATA = set(STAGES) - {"environment", "data", "cuda_tests"}


def _alarm(_signum: int, _frame: Any) -> None:
    raise BudgetExhausted("the time budget ran out")


def run_stage(check: Check, name: str) -> None:
    """Run one stage under the global deadline; record ok / skipped / failed and write."""
    record: dict[str, Any]
    start = time.perf_counter()
    print(f"\n== {name} ({check.remaining():.0f} s of budget left)", flush=True)
    if name in NEEDS_DATA and check.full_splits is None:
        record = {"status": "skipped", "reason": "no data: the data stage did not run"}
    elif check.remaining() <= 0 and name != "environment":  # the versions are always recorded
        record = {"status": "skipped", "reason": "the time budget is spent"}
    else:
        use_alarm = hasattr(signal, "SIGALRM") and name != "environment"
        if use_alarm:
            previous = signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, max(0.5, check.remaining()))
        check.items = []
        try:
            record = STAGE_FUNCTIONS[name](check)
            record.setdefault("status", "ok")
            items = record.get("items")
            if items and all(item.get("status") == "skipped" for item in items):
                record["status"] = "skipped"
                record["reason"] = items[0].get("reason", "every item was skipped")
            failed = [i for i in items or [] if i.get("status") == "failed"]
            if failed:
                record["status"] = "failed"
                record["error"] = "; ".join(f"{i['protocol']}: {i['error']}" for i in failed)
        except Skip as why:
            record = {"status": "skipped", "reason": str(why)}
        except BudgetExhausted as err:
            record = {"status": "stopped", "reason": f"{err} while this stage ran"}
            if check.items:  # what finished before the stop is kept
                record["items"] = list(check.items)
        except Exception as err:
            traceback.print_exc()
            record = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
    record["seconds"] = round(time.perf_counter() - start, 2)
    check.report["stages"][name] = record
    print(f"-- {name}: {record['status']} {record.get('reason', record.get('error', ''))}")
    check.write()


# --- the table printed last ----------------------------------------------------------------


def _s(value: Any, unit: str = "s") -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value / 60:.1f} min" if value >= 120 else f"{value:.1f} s"
    return f"{value:,.0f}{unit}"


def print_table(report: dict[str, Any]) -> None:
    """The figures, each labelled measured or projected, with targets and the lecture's times."""
    stages = report["stages"]
    env = stages["environment"].get("info", {})
    print("\n" + "=" * 100)
    kind = "CPU DRY RUN (tiny sizes: no figure here says anything about a GPU)"
    print(f"gpu_check: {kind if report['dry_run'] else report['device']}")
    print(
        f"torch {env.get('torch')}, CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}; "
        f"{env.get('machine')}; {report.get('seconds')} s of a {report['budget_seconds']:.0f} s "
        "budget"
    )
    data = stages["data"].get("info", {})
    if data:
        print(
            f"data: {data.get('data')}; distinct {data.get('distinct_images')}, "
            f"timed {data.get('timed_images')}"
        )
    print("\nstage                 status    seconds  note")
    for name in STAGES:
        stage = stages[name]
        note = stage.get("reason") or stage.get("error") or ""
        print(f"{name:<21} {stage['status']:<9} {stage.get('seconds', 0):>7}  {note[:60]}")
    tests = stages["cuda_tests"].get("measured")
    if tests:
        print(
            f"\nCUDA tests (measured): {tests.get('passed', 0)} passed, {tests.get('failed', 0)} "
            f"failed, {tests.get('errors', 0)} errors, {tests.get('skipped', 0)} skipped"
        )
    head = (
        f"{'protocol':<14} {'compile':<7} {'epoch (meas.)':>13} {'img/s (meas.)':>13} "
        f"{'cache build':>11} {'peak MB':>8} {'50 ep (proj.)':>13} {'target':>7} "
        f"{'lecture':>9} {'naive/fast':>10}"
    )
    print("\nfast path: measured after a warm-up epoch; 50 epochs at full scale projected\n" + head)
    print("-" * len(head))
    naive = {i["protocol"]: i for i in stages["naive_path"].get("items", [])}
    for stage_name in ("fast_path", "fast_path_compile"):
        for item in stages[stage_name].get("items", []):
            name = item["protocol"]
            if item.get("status") != "ok":
                print(
                    f"{name:<14} {str(stage_name.endswith('compile')):<7} {item['status']}: "
                    f"{(item.get('reason') or item.get('error') or '')[:70]}"
                )
                continue
            m, p = item["measured"], item["projected"]
            ratio = naive.get(name, {}).get("projected", {}).get("epoch_ratio_naive_over_fast")
            peak = m.get("peak_gpu_mb", m.get("peak_rss_mb"))
            print(
                f"{name:<14} {str(item['compile']):<7} {_s(m['epoch_seconds_after_warmup']):>13} "
                f"{m['images_per_second']:>13,.0f} {_s(m['cache_build_seconds']):>11} "
                f"{_s(peak, ''):>8} {_s(p['total_50_epochs_seconds']):>13} "
                f"{_s(item['target_seconds']):>7} "
                f"{item['lecture_minutes'] or '-':>5} min "
                f"{'' if ratio is None or item['compile'] else f'{ratio:.0f}x':>10}"
            )
    full = stages["full_run"]
    if full.get("status") == "ok":
        m = full["measured"]
        print(
            f"\nfull run, lecture-large, {m['epochs']} epochs (measured end to end): "
            f"{_s(m['run_seconds'])}; target <= {_s(full['target_seconds'])}; lecture "
            f"{full['lecture_minutes']} min; test acc {m['test_acc']:.2f}% "
            f"({full['info']['accuracy_means']})"
        )
    for stage_name in ("mobilenet", "mobilenet_last_block"):
        stage = stages[stage_name]
        if stage.get("status") == "ok":
            m = stage["measured"]
            print(
                f"MobileNetV2 {stage['protocol']}, {m['epochs']} epochs (measured): test acc "
                f"{m['test_acc']:.2f}%, {_s(m['run_seconds'])} ({stage['info']['accuracy_means']})"
            )
    print("=" * 100, flush=True)


def _stage_of(report: dict[str, Any], name: str) -> dict[str, Any]:
    stage = report.get("stages", {}).get(name, {})
    return stage if isinstance(stage, dict) else {}


def summary_markdown(path: Path) -> str:
    """The README's "Speed on a GPU" paragraph, written from one GPU record (``--summarize``).

    Every figure is copied from the record and labelled measured or projected; the file is
    named, so the README's test can check that the paragraph quotes the newest record.
    """
    report = json.loads(Path(path).read_text())
    if report.get("dry_run") is not False or not str(report.get("device", "")).startswith("cuda"):
        raise SystemExit(f"{path} is no GPU record (dry run, or no CUDA device): nothing to quote")
    env = _stage_of(report, "environment").get("info", {})
    try:
        shown = Path(path).resolve().relative_to(ROOT)
    except ValueError:
        shown = Path(path)
    lines = [
        f"**Speed on a GPU** (`{shown}`: {report.get('gpu')}, torch {env.get('torch')}, CUDA "
        f"{env.get('cuda')}, {str(report.get('started', ''))[:10]}; random weights for the "
        "timings; targets for 50 epochs at full scale, cache build included):",
        "",
    ]
    runs: dict[str, dict[bool, dict[str, Any]]] = {}
    for stage_name in ("fast_path", "fast_path_compile"):
        for item in _stage_of(report, stage_name).get("items", []):
            if item.get("status") == "ok":
                runs.setdefault(item["protocol"], {})[bool(item.get("compile"))] = item
    naive = {
        i["protocol"]: i
        for i in _stage_of(report, "naive_path").get("items", [])
        if i.get("status") == "ok"
    }
    for name in FAST_PROTOCOLS:
        variants = runs.get(name, {})
        if not variants:
            reason = "not measured in that run"
            lines.append(f"- `{name}`: {reason}.")
            continue
        parts = []
        for compiled, item in sorted(variants.items()):
            m, p = item["measured"], item["projected"]
            build = m.get("cache_build_seconds")
            parts.append(
                f"{'with' if compiled else 'without'} `torch.compile` "
                f"{_s(p['total_50_epochs_seconds'])} projected (epoch "
                f"{_s(m['epoch_seconds_after_warmup'])} measured"
                + (f", cache build {_s(build)} measured" if build else "")
                + ")"
            )
        target = _s(TARGET_SECONDS[name])
        lecture = next(iter(variants.values())).get("lecture_minutes")
        ratio = naive.get(name, {}).get("projected", {}).get("epoch_ratio_naive_over_fast")
        lines.append(
            f"- `{name}`: {'; '.join(parts)}; target <= {target}, the lecture {lecture} min"
            + (f"; naive / fast epoch {ratio:,.0f}x" if ratio else "")
            + "."
        )
    full = _stage_of(report, "full_run")
    if full.get("status") == "ok":
        m = full["measured"]
        lines.append(
            f"- `lecture-large` end to end through `run_protocol`, {m['epochs']} epochs: "
            f"{_s(m['run_seconds'])} measured (target <= 60 s)."
        )
    for stage_name in ("mobilenet", "mobilenet_last_block"):
        stage = _stage_of(report, stage_name)
        if stage.get("status") == "ok":
            m = stage["measured"]
            data = stage.get("info", {}).get("data") or {}
            lines.append(
                f"- Offline ImageNet MobileNetV2, `{stage['protocol']}`, {m['epochs']} epochs on "
                f"{data.get('train', '?'):,} training images of the course's JPEG CIFAR-10: "
                f"test accuracy {m['test_acc']:.2f}% measured."
                if isinstance(data.get("train"), int)
                else f"- Offline ImageNet MobileNetV2, `{stage['protocol']}`: test accuracy "
                f"{m['test_acc']:.2f}% measured."
            )
    tests = _stage_of(report, "cuda_tests").get("measured")
    if tests:
        lines.append(
            f"- CUDA tests: {tests.get('passed', 0)} passed, {tests.get('failed', 0)} failed, "
            f"{tests.get('skipped', 0)} skipped."
        )
    missing = [n for n, st in report.get("stages", {}).items() if st.get("status") != "ok"]
    if missing:
        lines.append(f"- Not measured in that run: {', '.join(missing)} (the JSON says why).")
    return "\n".join(lines) + "\n"


# --- carried inputs ----------------------------------------------------------------------------


def prepare_inputs(target: Path, source: Path, train_per_class: int) -> dict[str, Any]:
    """Write what the device call carries into ``target`` and return what was written.

    - ``cifar10/cifar10-jpeg-train.zip``: the first ``train_per_class`` images of each class
      (sorted by name) of the course's train zip, stored uncompressed like the original;
    - ``cifar10/cifar10-jpeg-test.zip``: the whole test zip (10,000 images);
    - ``mobilenet-v2-imagenet/``: the TFLite file, its labels, LICENSE and README;
    - ``site/``: the pure-Python ``tflite`` and ``flatbuffers`` packages (the device has no
      ``tflite``); the wrapper puts this folder on ``PYTHONPATH``.
    """
    from course.sources.reading import TEST_ZIP, TRAIN_ZIP

    train_zip, test_zip = source / TRAIN_ZIP, source / TEST_ZIP
    tflite_dir = source / "mobilenet-v2-imagenet"
    for needed in (train_zip, test_zip, tflite_dir):
        if not needed.exists():
            sys.exit(f"--prepare-inputs: {needed} is missing (pass --inputs-from DIR)")
    if target.exists():
        shutil.rmtree(target)
    data = target / "cifar10"
    data.mkdir(parents=True)
    per_class: dict[str, int] = {}
    with (
        zipfile.ZipFile(train_zip) as src,
        zipfile.ZipFile(data / TRAIN_ZIP, "w", zipfile.ZIP_STORED) as dst,
    ):
        for name in sorted(src.namelist()):
            parts = name.split("/")
            if len(parts) != 3 or not parts[2]:
                continue
            label = parts[1]
            if per_class.get(label, 0) >= train_per_class:
                continue
            per_class[label] = per_class.get(label, 0) + 1
            dst.writestr(name, src.read(name))
    shutil.copyfile(test_zip, data / TEST_ZIP)
    shutil.copytree(tflite_dir, target / "mobilenet-v2-imagenet")
    site = target / "site"
    site.mkdir()
    for package in ("tflite", "flatbuffers"):
        module = __import__(package)
        shutil.copytree(
            Path(module.__file__).parent,
            site / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    sizes = {
        str(p.relative_to(target)): p.stat().st_size
        for p in sorted(target.rglob("*"))
        if p.is_file()
    }
    inputs = sum(sizes.values())
    tree = repo_tree_bytes()
    summary = {
        "target": str(target),
        "train_images_per_class": per_class,
        "inputs_mib": inputs / 2**20,
        "repo_tree_mib": tree / 2**20,
        "total_mib": (inputs + tree) / 2**20,
        "limit_mib": CARRY_LIMIT_MIB,
        "largest": sorted(sizes.items(), key=lambda kv: -kv[1])[:4],
    }
    print(
        f"{target}: {summary['inputs_mib']:.1f} MiB of inputs ({sum(per_class.values()):,} train "
        f"images, {len(per_class)} classes; test zip {sizes[f'cifar10/{TEST_ZIP}'] / 2**20:.1f} "
        f"MiB; TFLite + readers), repository tree {summary['repo_tree_mib']:.1f} MiB: "
        f"{summary['total_mib']:.1f} MiB of the call's {CARRY_LIMIT_MIB} MiB"
    )
    if summary["total_mib"] > CARRY_LIMIT_MIB - CARRY_MARGIN_MIB:
        print(
            f"WARNING: less than {CARRY_MARGIN_MIB} MiB to spare: rerun with a smaller "
            "--train-per-class"
        )
    return summary


def repo_tree_bytes() -> int:
    """Bytes of what a device call sends without ``carry``: tracked and untracked, not ignored."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    total = 0
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file():
            total += path.stat().st_size
    return total


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options; ``--dry-run`` switches to the CPU at tiny sizes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the CPU at tiny sizes")
    parser.add_argument("--budget", type=float, default=None, help="seconds (GPU 450, dry 110)")
    parser.add_argument("--data", default=None, help="a CIFAR-10 source, or 'synthetic'")
    parser.add_argument("--pretrained", default=None, help="folder holding the TFLite file")
    parser.add_argument("--out", default=None, help="folder for the JSON")
    parser.add_argument("--copy-to", default=None, help="also write the JSON here (the $OUT)")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--prepare-inputs", type=Path, default=None, metavar="DIR")
    parser.add_argument("--inputs-from", type=Path, default=None, help="default ../shared/data")
    parser.add_argument("--train-per-class", type=int, default=3000)
    parser.add_argument(
        "--summarize", type=Path, default=None, metavar="JSON", help="print the README paragraph"
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.budget is None:
        args.budget = 110.0 if args.dry_run else 450.0
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the check (or prepare its inputs); return the exit status."""
    args = parse_args(argv)
    if args.summarize is not None:
        print(summary_markdown(args.summarize))
        return 0
    if args.prepare_inputs is not None:
        from course import paths

        source = args.inputs_from or paths.shared_data_dir()
        if source is None:
            sys.exit("--prepare-inputs: no ../shared/data here; pass --inputs-from DIR")
        prepare_inputs(args.prepare_inputs, Path(source), args.train_per_class)
        return 0
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: PyTorch sees no CUDA GPU here; use --dry-run on a CPU.", file=sys.stderr)
        return 2
    check = Check(args)
    try:
        for name in STAGES:
            if name in args.stages or name == "environment":
                run_stage(check, name)
            else:
                check.report["stages"][name] = {"status": "skipped", "reason": "not asked for"}
        path = check.write()
        print_table(check.report)
        print(f"written: {path}")
    finally:
        shutil.rmtree(check.work, ignore_errors=True)
    failed = [n for n, s in check.report["stages"].items() if s["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
