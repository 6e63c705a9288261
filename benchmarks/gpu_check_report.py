"""The GPU check's table printed last and the README paragraph (``--summarize``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpu_check_core import FAST_PROTOCOLS, ROOT, STAGES, TARGET_SECONDS


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
