"""The prepared GPU check (benchmarks/gpu_check.py) runs on the CPU, and GPU figures need its JSON.

The dry run goes through the same stages as the device call at tiny sizes, so the script
cannot rot between the sessions that are lent a GPU. The Results page and the README show
GPU figures only from a record of that script naming a GPU.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from data_fakes import make_jpeg_zips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs" / "hooks"))
import benchmark_tables  # noqa: E402


def _load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_check", module)
    spec.loader.exec_module(module)
    return module


gpu_check = _load_gpu_check()

STATUSES = {"ok", "skipped", "stopped"}


def _figures(where: str, figures: Any) -> None:
    """Every measured / projected figure is a number (or a list of numbers), or None."""
    assert isinstance(figures, dict), where
    for key, value in figures.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            assert v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)), (
                f"{where}.{key} = {v!r} is not a number"
            )


def check_report_shape(report: dict[str, Any]) -> None:
    """What every gpu_check JSON holds: labels, every stage with a status, numeric figures."""
    assert report["benchmark"] == "benchmarks/gpu_check.py"
    assert report["schema"] == gpu_check.SCHEMA_VERSION
    assert {"measured", "projected"} <= set(report["labels"])
    assert list(report["stages"]) == list(gpu_check.STAGES)
    for name, stage in report["stages"].items():
        assert stage["status"] in STATUSES | {"failed"}, (name, stage)
        if stage["status"] != "ok":
            assert stage.get("reason") or stage.get("error"), f"{name}: no reason given"
        for part in ("measured", "projected"):
            if part in stage:
                _figures(f"{name}.{part}", stage[part])
        for item in stage.get("items", []):
            assert item["status"] in STATUSES | {"failed"}, item
            if item["status"] == "ok":
                assert {"measured", "projected"} <= set(item), item
            for part in ("measured", "projected"):
                if part in item:
                    _figures(f"{name}.{item['protocol']}.{part}", item[part])


# --- the dry run, end to end -----------------------------------------------------------------


@pytest.mark.slow
def test_dry_run_runs_every_stage_on_the_cpu_and_writes_the_json(tmp_path: Path) -> None:
    """~1-2 min on 2 loaded cores: every stage runs at tiny sizes on synthetic images."""
    out = tmp_path / "out"
    copy_to = tmp_path / "copy"
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/gpu_check.py",
            "--dry-run",
            "--data",
            "synthetic",
            "--budget",
            "500",  # a ceiling for a loaded machine; the run takes what it needs
            "--out",
            str(out),
            "--copy-to",
            str(copy_to),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = out.glob("gpu-cpu-dry-run-*.json")
    assert (copy_to / path.name).read_text() == path.read_text()
    report = json.loads(path.read_text())
    check_report_shape(report)
    assert report["device"] == "cpu" and report["dry_run"] is True
    stages = report["stages"]
    # Nothing may fail. The first six stages must run; the last three may lose the budget
    # on a machine shared by many workers (say so), or lack the TFLite file (a fresh machine
    # without ../shared/data).
    for name, stage in stages.items():
        if name in gpu_check.STAGES[:6]:
            assert stage["status"] == "ok", (name, stage)
        elif stage["status"] != "ok":
            assert stage["status"] in ("skipped", "stopped"), (name, stage)
            assert "budget" in stage["reason"] or "TFLite" in stage["reason"], (name, stage)
    assert stages["data"]["info"]["synthetic"] is True
    assert "NOT CIFAR-10" in stages["data"]["info"]["data"]
    fast = {item["protocol"]: item for item in stages["fast_path"]["items"]}
    assert set(fast) == set(gpu_check.FAST_PROTOCOLS)
    assert (
        fast["lecture-large"]["cached"]
        and fast["lecture-large"]["measured"]["cache_build_seconds"] > 0
    )
    assert fast["scratch"]["measured"]["cache_build_seconds"] is None  # random crops: no cache
    compiled = stages["fast_path_compile"].get("items", [])
    assert all(item["compile"] for item in compiled if item["status"] == "ok")
    naive = stages["naive_path"]["items"]
    assert all(item["projected"]["epoch_ratio_naive_over_fast"] > 0 for item in naive)
    assert stages["full_run"]["measured"]["epochs"] == gpu_check.DRY_SCALE.full_run_epochs
    assert "random" in stages["full_run"]["info"]["weights"]
    tests = stages["cuda_tests"]
    assert tests["measured"]["failed"] == 0 and tests["measured"]["errors"] == 0
    assert any("test_on_a_gpu" in t for t in tests["info"]["tests"])
    assert "CPU DRY RUN" in done.stdout and "written:" in done.stdout

    # The site reads this very shape: relabelled as a GPU record, its rows appear.
    assert "Not measured on a GPU" in benchmark_tables.gpu_section(out)
    gpu = {**report, "dry_run": False, "device": "cuda: Fake GPU", "gpu": "Fake GPU"}
    (out / "gpu-fake-gpu-20990101-0000.json").write_text(json.dumps(gpu))
    text = benchmark_tables.gpu_section(out)
    assert "Fake GPU" in text and "Not measured on a GPU" not in text
    for name in gpu_check.FAST_PROTOCOLS:
        assert f"`{name}`" in text


def test_a_budget_too_small_skips_every_stage_with_its_reason_and_still_writes(
    tmp_path: Path,
) -> None:
    status = gpu_check.main(
        ["--dry-run", "--data", "synthetic", "--budget", "1", "--out", str(tmp_path)]
    )
    assert status == 0
    (path,) = tmp_path.glob("gpu-cpu-dry-run-*.json")
    report = json.loads(path.read_text())
    check_report_shape(report)
    stages = report["stages"]
    assert stages["environment"]["status"] == "ok"
    assert stages["environment"]["info"]["torch"]
    for name in gpu_check.STAGES[1:]:
        assert stages[name]["status"] == "skipped", name
    assert "budget" in stages["data"]["reason"]
    assert "no data" in stages["fast_path"]["reason"]


def test_without_cuda_the_real_check_refuses_and_says_to_use_the_dry_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--budget", "10"]) == 2
    assert "--dry-run" in capsys.readouterr().err


# --- the pieces -------------------------------------------------------------------------------


class _Item:
    """Enough of a pytest item for ``needs_cuda``: its marks, by name."""

    def __init__(self, *marks: tuple[str, str]) -> None:
        self.marks = [SimpleNamespace(name=name, kwargs={"reason": why}) for name, why in marks]

    def get_closest_marker(self, name: str) -> Any:
        return next((m for m in self.marks if m.name == name), None)

    def iter_markers(self, name: str) -> Any:
        return (m for m in self.marks if m.name == name)


def test_the_cuda_tests_are_those_marked_cuda_or_skipped_without_cuda() -> None:
    assert gpu_check.needs_cuda(_Item(("cuda", "")))
    assert gpu_check.needs_cuda(_Item(("skipif", "needs a CUDA GPU (the CPU runs the rest)")))
    assert gpu_check.needs_cuda(_Item(("slow", ""), ("skipif", "no GPU here")))
    assert not gpu_check.needs_cuda(_Item(("skipif", "needs bubblewrap")))
    assert not gpu_check.needs_cuda(_Item(("slow", "mentions a GPU but is no skipif")))
    files = {path.name for path in gpu_check.cuda_test_files()}
    assert "test_fast.py" in files  # holds test_on_a_gpu_the_fast_paths_train_like_on_the_cpu
    assert "test_site.py" not in files  # mentions "cuda" in strings only: not collected


def test_junit_counts_reads_pytest_s_xml(tmp_path: Path) -> None:
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest" tests="4" failures="1" errors="0" skipped="1">'
        '<testcase classname="tests.test_fast" name="test_a"/>'
        '<testcase classname="tests.test_fast" name="test_b"><failure/></testcase>'
        '<testcase classname="tests.test_fast" name="test_c"><skipped/></testcase>'
        '<testcase classname="tests.test_x" name="test_d"/></testsuite></testsuites>'
    )
    counts = gpu_check.junit_counts(xml)
    assert (counts["passed"], counts["failed"], counts["skipped"]) == (2, 1, 1)
    assert counts["cases"][0] == "tests.test_fast::test_a"


def test_projection_at_full_scale_adds_49_steady_epochs_to_what_was_measured() -> None:
    n = {"train": 45_000, "valid": 5_000, "test": 10_000}
    measured = {
        "epoch_seconds_after_warmup": 2.0,
        "first_epoch_seconds": 5.0,
        "cache_build_seconds": 8.0,
        "one_time_seconds": 9.0,
    }
    projected = gpu_check.project_fast(measured, n, cached=True)
    assert projected["epoch_seconds"] == pytest.approx(2.0)
    # build 8 + test pass etc. 1 + warm-up extra 3 + 50 x 2
    assert projected["total_50_epochs_seconds"] == pytest.approx(8 + 1 + 3 + 100)
    # A tenth of the images: every part scales by its own count, the warm-up extra does not.
    tenth = {k: v // 10 for k, v in n.items()}
    small = gpu_check.project_fast(measured, tenth, cached=True)
    assert small["total_50_epochs_seconds"] == pytest.approx(80 + 10 + 3 + 1000)


def test_repeat_to_reaches_full_scale_from_fewer_distinct_images() -> None:
    from course.data import synthetic_cifar10

    splits = synthetic_cifar10(3)  # 30 images a split
    scaled = gpu_check.repeat_to(splits, {"train": 70, "valid": 30})
    assert len(scaled.train.labels) == 70 and scaled.valid is splits.valid
    assert scaled.train.images[30:60].equal(splits.train.images)
    assert scaled.fingerprint != splits.fingerprint  # feature caches never mix the two


def test_run_and_read_takes_a_folder_today_and_a_run_record_after_issue_20(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import solutions.run

    (tmp_path / "results.json").write_text(json.dumps({"test_acc": 12.5}))

    class Record:
        output_dir = tmp_path

    for returned in (tmp_path, Record()):
        monkeypatch.setattr(solutions.run, "run_protocol", lambda *a, r=returned: r)
        assert gpu_check.run_and_read(None, None, None) == {"test_acc": 12.5}


def test_prepare_inputs_writes_a_loadable_subset_the_tflite_file_and_its_reader(
    tmp_path: Path,
) -> None:
    from course.data import load_cifar10

    source = make_jpeg_zips(tmp_path / "shared", per_class=4, test_per_class=3)
    weights = source / "mobilenet-v2-imagenet"
    weights.mkdir()
    (weights / "mobilenet_v2_1.0_224_quant.tflite").write_bytes(b"stand-in")
    summary = gpu_check.prepare_inputs(tmp_path / "inputs", source, train_per_class=2)
    target = tmp_path / "inputs"
    with zipfile.ZipFile(target / "cifar10" / "cifar10-jpeg-train.zip") as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
    assert len(names) == 20 and set(summary["train_images_per_class"].values()) == {2}
    assert (target / "cifar10" / "cifar10-jpeg-test.zip").read_bytes() == (
        source / "cifar10-jpeg-test.zip"
    ).read_bytes()
    assert (target / "mobilenet-v2-imagenet" / "mobilenet_v2_1.0_224_quant.tflite").is_file()
    assert (target / "site" / "tflite" / "__init__.py").is_file()
    assert 0 < summary["inputs_mib"] < summary["total_mib"] < gpu_check.CARRY_LIMIT_MIB
    splits = load_cifar10(target / "cifar10")
    assert len(splits.train.labels) + len(splits.valid.labels) == 20
    assert len(splits.test.labels) == 30


# --- no GPU figure without a JSON -------------------------------------------------------------


def _gpu_record(**changes: Any) -> dict[str, Any]:
    fast = {
        "protocol": "lecture-large",
        "compile": False,
        "status": "ok",
        "measured": {
            "epoch_seconds_after_warmup": 0.4,
            "images_per_second": 125_000.0,
            "cache_build_seconds": 9.5,
            "peak_gpu_mb": 12_000.0,
        },
        "projected": {"total_50_epochs_seconds": 31.0},
    }
    record = {
        "benchmark": "benchmarks/gpu_check.py",
        "schema": 1,
        "dry_run": False,
        "device": "cuda: NVIDIA H100 80GB HBM3",
        "gpu": "NVIDIA H100 80GB HBM3",
        "started": "2026-12-08T10:00:00+00:00",
        "stages": {
            "environment": {"status": "ok", "info": {"torch": "2.11.0", "cuda": "13.0"}},
            "fast_path": {"status": "ok", "items": [fast]},
            "naive_path": {
                "status": "ok",
                "items": [
                    {
                        "protocol": "lecture-large",
                        "status": "ok",
                        "projected": {"epoch_ratio_naive_over_fast": 250.0},
                    }
                ],
            },
            "mobilenet": {"status": "skipped", "reason": "no TFLite MobileNetV2 here"},
        },
    }
    record.update(changes)
    return record


def test_results_page_says_not_measured_until_a_gpu_record_exists(tmp_path: Path) -> None:
    note = "Not measured on a GPU"
    assert note in benchmark_tables.benchmarks_section(tmp_path)
    assert "No benchmarks recorded yet" in benchmark_tables.benchmarks_section(tmp_path)
    # A dry run, or a record without a GPU, is no GPU figure.
    dry = _gpu_record(dry_run=True, device="cpu", gpu=None)
    (tmp_path / "gpu-cpu-dry-run-20990101-0000.json").write_text(json.dumps(dry))
    text = benchmark_tables.benchmarks_section(tmp_path)
    assert note in text and "125,000" not in text
    (tmp_path / "gpu-broken.json").write_text("{not json")
    assert note in benchmark_tables.gpu_section(tmp_path)
    (tmp_path / "gpu-broken.json").unlink()

    (tmp_path / "gpu-nvidia-h100-20261208-1000.json").write_text(json.dumps(_gpu_record()))
    text = benchmark_tables.benchmarks_section(tmp_path)
    assert note not in text
    for expected in (
        "gpu-nvidia-h100-20261208-1000.json",
        "NVIDIA H100 80GB HBM3",
        "| `lecture-large` | no | 0.4 s | 125,000.0 | 9.5 s | 12,000 | 31.0 s | <= 60 s | "
        "213.1 min | 250x |",
        "(measured)",
        "(projected)",
        "mobilenet (skipped: no TFLite MobileNetV2 here)",
    ):
        assert expected in text, expected
    # gpu_check records appear in the GPU section only, never as a generic benchmark.
    assert "### `gpu-" not in text


def _real_gpu_records() -> list[Path]:
    return [path for path, _ in benchmark_tables.gpu_records(ROOT / "benchmarks" / "results")]


def test_readme_shows_gpu_figures_only_from_a_committed_gpu_record() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    records = _real_gpu_records()
    if not records:
        assert "not measured on a GPU" in readme
    else:
        assert records[-1].name in readme, "the README must name the GPU record it quotes"


def test_benchmarks_readme_holds_the_device_call_and_it_fits() -> None:
    text = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- gpu-check-command -->\s*```bash\n(.*?)```", text, re.DOTALL)
    assert block, "benchmarks/README.md lost the marked device command"
    command = block.group(1).strip()
    assert "benchmarks/gpu_check.sh" in command and len(command) <= 2000
    assert '"carry": [".gpu-inputs"]' in text
    assert "--prepare-inputs .gpu-inputs" in text


def test_a_stopped_stage_keeps_its_finished_items_and_a_failed_item_fails_its_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = gpu_check.Check(gpu_check.parse_args(["--dry-run", "--out", str(tmp_path)]))
    check.full_splits = object()  # the stages below never look at it

    def stopped(check: Any) -> dict[str, Any]:
        check.items.append({"protocol": "lecture-large", "status": "ok", "measured": {}})
        raise gpu_check.BudgetExhausted("the time budget ran out")

    def broken(check: Any) -> dict[str, Any]:
        def fail() -> dict[str, Any]:
            raise RuntimeError("CUDA out of memory")

        check.items.append(gpu_check._item("scratch", fail))
        return {"items": check.items}

    monkeypatch.setitem(gpu_check.STAGE_FUNCTIONS, "fast_path", stopped)
    monkeypatch.setitem(gpu_check.STAGE_FUNCTIONS, "naive_path", broken)
    try:
        gpu_check.run_stage(check, "fast_path")
        gpu_check.run_stage(check, "naive_path")
    finally:
        shutil.rmtree(check.work, ignore_errors=True)
    stages = json.loads(check.out_path.read_text())["stages"]
    assert stages["fast_path"]["status"] == "stopped"
    assert stages["fast_path"]["items"][0]["protocol"] == "lecture-large"
    assert stages["naive_path"]["status"] == "failed"
    assert "scratch: RuntimeError: CUDA out of memory" in stages["naive_path"]["error"]


def test_summarize_writes_the_readme_paragraph_from_a_gpu_record_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _gpu_record()
    record["stages"]["full_run"] = {
        "status": "ok",
        "measured": {"epochs": 50, "run_seconds": 42.0},
    }
    path = tmp_path / "gpu-nvidia-h100-20261208-1000.json"
    path.write_text(json.dumps(record))
    assert gpu_check.main(["--summarize", str(path)]) == 0
    text = capsys.readouterr().out
    for expected in (
        "gpu-nvidia-h100-20261208-1000.json",
        "NVIDIA H100 80GB HBM3",
        "`lecture-large`: without `torch.compile` 31.0 s projected (epoch 0.4 s measured, "
        "cache build 9.5 s measured); target <= 60.0 s, the lecture",
        "naive / fast epoch 250x",
        "`lecture-small`: not measured in that run.",
        "50 epochs: 42.0 s measured",
        "Not measured in that run: mobilenet",
    ):
        assert expected in text, expected
    dry = tmp_path / "gpu-cpu-dry-run.json"
    dry.write_text(json.dumps(_gpu_record(dry_run=True, device="cpu")))
    with pytest.raises(SystemExit, match="no GPU record"):
        gpu_check.main(["--summarize", str(dry)])
