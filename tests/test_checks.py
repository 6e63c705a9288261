"""The autograder's checks: they pass correct answers and explain typical wrong ones.

Each answer goes the way it goes when a notebook is graded, in one process: the recorder of
``course.grading_record`` calls it on the inputs of a seed, what it saved makes a round trip
through ``torch.save`` / ``torch.load(weights_only=True)``, and the check compares that with
``solutions.transfer``. Every check runs against two correct implementations,
``solutions.transfer`` and the exercise's own solution cells (so the two cannot drift apart
unnoticed), and against the mistakes students really make, asserting that the message names
the mistake and its fix.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn
from torchvision.transforms import v2 as T

from autograder import checks as grader_checks
from autograder.exercise import exercise_source
from autograder.feedback import CheckFailure, summarize
from course.data import LECTURE_TYPO_STD, NORMALIZATIONS
from course.grading_record import RECORDERS
from solutions import transfer as ref

EXERCISE = exercise_source("transfer_learning")
#: The seed of these tests' inputs (the grader draws one per run).
SEED = 3


def graded(task: str, compare: Callable[[Any, int], None]) -> Callable[[Callable], None]:
    """``check(answer)``: record ``answer`` as the kernel would, then compare as the grader."""

    def check(answer: Callable, seed: int = SEED) -> None:
        buffer = io.BytesIO()
        torch.save(RECORDERS[task](answer, seed), buffer)
        buffer.seek(0)
        compare(torch.load(buffer, weights_only=True), seed)

    return check


checks = SimpleNamespace(
    **{task.check.__name__: graded(task.key, task.check) for task in grader_checks.TASKS},
)


@pytest.fixture(scope="module")
def exercise() -> dict[str, Any]:
    """The functions defined by the exercise's setup and solution cells (no test cells run)."""
    import jupytext

    notebook = jupytext.read(EXERCISE)
    namespace: dict[str, Any] = {}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (meta.get("solution") or meta.get("grade_id") == "setup"):
            exec(compile(cell.source, f"<{meta['grade_id']}>", "exec"), namespace)
    return namespace


def failure(check: Callable[[Callable], None], answer: Callable) -> str:
    """Run ``check`` on a wrong ``answer``; return its message with whitespace collapsed."""
    with pytest.raises(CheckFailure) as info:
        check(answer)
    message = str(info.value)
    for label in ("Expected:", "Found:", "Hint:"):
        assert label in message, f"{label} missing from:\n{message}"
    return " ".join(message.split())  # hints are wrapped: compare words, not line breaks


# --------------------------------------------------------------------------- correct answers


def reference_freezing(model: nn.Module) -> nn.Module:
    return ref.unfreeze(ref.freeze_backbone(model))


def reference_training(model, optimizer, train_loader, eval_loader, epochs=1):
    """A correct loop written independently of the exercise's solution cell."""
    losses = []
    for _ in range(epochs):
        model.train()
        for images, labels in train_loader:
            optimizer.zero_grad(set_to_none=True)
            loss = nn.CrossEntropyLoss()(model(images), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())  # tensors are accepted, not only floats
    from course.training import evaluate

    return losses, evaluate(model, eval_loader)


CHECKS = [
    ("check_load_vgg16", "load_vgg16", ref.load_vgg16),
    ("check_freezing", "freeze_and_unfreeze", reference_freezing),
    ("check_head_replacement", "replace_head", ref.replace_head),
    ("check_transforms", "build_transforms", ref.build_transforms),
    ("check_optimizer", "make_optimizer", ref.make_optimizer),
    ("check_channel_stats", "channel_stats", ref.channel_stats),
    ("check_training", "train_and_evaluate", reference_training),
]


@pytest.mark.parametrize(("check", "name", "answer"), CHECKS, ids=[c[0] for c in CHECKS])
def test_reference_passes(check: str, name: str, answer: Callable) -> None:
    getattr(checks, check)(answer)


@pytest.mark.parametrize(("check", "name", "answer"), CHECKS, ids=[c[0] for c in CHECKS])
def test_exercise_solution_passes(
    check: str, name: str, answer: Callable, exercise: dict[str, Any]
) -> None:
    getattr(checks, check)(exercise[name])


@pytest.mark.parametrize(("check", "name", "answer"), CHECKS, ids=[c[0] for c in CHECKS])
def test_comparing_leaves_rng_alone(
    check: str, name: str, answer: Callable, capfd: pytest.CaptureFixture[str]
) -> None:
    task = next(t for t in grader_checks.TASKS if t.check.__name__ == check)
    record = RECORDERS[task.key](answer, SEED)  # the answer itself may draw numbers
    torch.manual_seed(1234)
    expected_next = torch.rand(1)
    torch.manual_seed(1234)
    task.check(record, SEED)
    assert torch.equal(torch.rand(1), expected_next), "a check changed the grader's RNG state"
    assert capfd.readouterr().err == "", "a passing answer should leave stderr quiet"


@pytest.mark.parametrize(("check", "name", "answer"), CHECKS, ids=[c[0] for c in CHECKS])
def test_reference_passes_with_other_seeds(check: str, name: str, answer: Callable) -> None:
    for seed in (0, 1, 123456789):
        getattr(checks, check)(answer, seed)


def test_stub_is_reported_as_not_done() -> None:
    def stub(*args: Any, **kwargs: Any) -> None:
        raise NotImplementedError()

    for check, _, _ in CHECKS:
        message = failure(getattr(checks, check), stub)
        assert "not done yet" in message and "NotImplementedError" in message


# --------------------------------------------------------------------------- task 1


def test_load_without_course_models_is_named() -> None:
    import torchvision

    message = failure(checks.check_load_vgg16, lambda weights="random": torchvision.models.vgg16())
    assert "course.models.load_model" in message


def test_load_ignoring_the_weights_argument_is_named() -> None:
    from course.models import load_model

    message = failure(checks.check_load_vgg16, lambda weights="random": load_model("vgg16"))
    assert "does not reach" in message and "weights=weights" in message


def test_load_returning_resnet_is_named() -> None:
    from course.models import load_model

    message = failure(
        checks.check_load_vgg16, lambda weights="random": load_model("resnet18", weights)
    )
    assert "not torchvision's VGG16" in message


# --------------------------------------------------------------------------- task 2


def test_lecture_bug_is_named_with_its_fix() -> None:
    from autograder.checks.model_surgery import reference_trainable

    message = failure(checks.check_freezing, ref.lecture_unfreeze)
    assert "lecture's freezing bug" in message
    assert "classifier.1 (ReLU)" in message and "classifier.3 (Linear)" in message
    assert "requires_grad_(True)" in message
    names, sizes, head_only = reference_trainable(SEED, "head_after")
    should = sum(torch.Size(sizes[n]).numel() for n in names)
    assert f"{should:,} trainable parameters" in message  # what should have trained
    assert f"{head_only:,} trainable parameters" in message  # what did


def test_vgg16_figures_of_the_lecture_bug() -> None:
    """On VGG16 with 10 classes the counts are the lecture's: 119,586,826 and 40,970."""
    from autograder.checks.common import lecture_bug_trainable
    from course.grading_record import meta_model, swap_vgg_head

    model = meta_model("vgg16")
    swap_vgg_head(model, 10)
    model = ref.unfreeze(ref.freeze_backbone(model))
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 119_586_826
    assert lecture_bug_trainable(4096, 10) == 40_970


def test_lecture_bug_written_by_a_student_is_named() -> None:
    def lecture_cell(model: nn.Module) -> nn.Module:
        for param in model.parameters():
            param.requires_grad = False
        model.classifier[1].requires_grad = True
        model.classifier[3].requires_grad = True
        return model

    assert "lecture's freezing bug" in failure(checks.check_freezing, lecture_cell)


def test_head_only_is_named_a_linear_probe() -> None:
    def freeze_only(model: nn.Module) -> nn.Module:
        return model.requires_grad_(False)

    from autograder.checks.model_surgery import reference_trainable

    message = failure(checks.check_freezing, freeze_only)
    head_only = reference_trainable(SEED, "head_after")[2]
    assert f"only the new head trains ({head_only:,} parameters)" in message
    assert "linear probe" in message and "classifier[0]" in message


def test_nothing_frozen_is_named() -> None:
    message = failure(checks.check_freezing, lambda model: model)
    assert "must stay frozen" in message and "requires_grad_(False)" in message
    assert "features.0 (weight, bias)" in message


def test_head_left_frozen_is_caught_when_head_is_replaced_first() -> None:
    def fc6_fc7_only(model: nn.Module) -> nn.Module:
        model.requires_grad_(False)
        model.classifier[0].requires_grad_(True)
        model.classifier[3].requires_grad_(True)
        return model

    message = failure(checks.check_freezing, fc6_fc7_only)
    assert "head replaced before" in message and "Unfreeze the head too" in message


def test_missing_return_is_named() -> None:
    message = failure(checks.check_freezing, lambda model: None)
    assert "did not return a model" in message and "return model" in message


# --------------------------------------------------------------------------- task 3


def test_vgg_only_head_replacement_names_other_families() -> None:
    def vgg_only(model: nn.Module, num_classes: int) -> nn.Module:
        model.classifier[6] = nn.Linear(4096, num_classes)
        return model

    message = failure(checks.check_head_replacement, vgg_only)
    assert "AttributeError" in message and "ResNet `model.fc`" in message


def test_head_without_in_features_is_named() -> None:
    def fixed_in_features(model: nn.Module, num_classes: int) -> nn.Module:
        name = ref.head_name(model)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, nn.Linear(4096, num_classes))
        return model

    message = failure(checks.check_head_replacement, fixed_in_features)
    from course.grading_record import head_classes

    classes = head_classes("resnet18", SEED)
    assert "resnet18" in message and f"Linear(512, {classes})" in message
    assert "old.in_features" in message


def test_head_with_fixed_ten_classes_is_named() -> None:
    message = failure(checks.check_head_replacement, lambda model, n: ref.replace_head(model, 10))
    from course.grading_record import head_classes

    classes = head_classes("vgg16", SEED)
    assert f"Linear(4096, {classes})" in message and "Linear(4096, 10)" in message
    assert "num_classes" in message


def test_appended_layer_is_named() -> None:
    def append(model: nn.Module, num_classes: int) -> nn.Module:
        model.classifier.append(nn.Linear(1000, num_classes))
        return model

    message = failure(checks.check_head_replacement, append)
    assert "changed the wrong part" in message and "classifier.7" in message


def test_reinitialized_backbone_is_named() -> None:
    import torchvision

    def rebuild(model: nn.Module, num_classes: int) -> nn.Module:
        if isinstance(model, torchvision.models.MobileNetV3):
            model = torchvision.models.mobilenet_v3_small()
        return ref.replace_head(model, num_classes)

    message = failure(checks.check_head_replacement, rebuild)
    assert "changed layers other than the head" in message


# --------------------------------------------------------------------------- task 4


def _transforms(*, normalize: bool = True, scale: bool = True, std=None, crop=T.RandomCrop):
    """A parametrized, otherwise correct build_transforms for injecting one mistake."""

    def build(size: int, normalization: str = "imagenet", augment: bool = False):
        mean, s = NORMALIZATIONS[normalization]
        tail = [T.ToDtype(torch.float32, scale=scale)]
        if normalize:
            tail.append(T.Normalize(mean, std or s))
        if not augment:
            t = T.Compose([T.ToImage(), T.Resize(size, antialias=True), *tail])
            return t, t
        head = [T.ToImage(), T.Resize(size + 6, antialias=True)]
        return (
            T.Compose([*head, crop(size), *tail]),
            T.Compose([*head, T.CenterCrop(size), *tail]),
        )

    return build


def test_correct_parametrized_transforms_pass() -> None:
    checks.check_transforms(_transforms())


def test_forgotten_normalization_is_named() -> None:
    message = failure(checks.check_transforms, _transforms(normalize=False))
    assert "add `Normalize(mean, std)`" in message


def test_missing_scale_is_named() -> None:
    message = failure(checks.check_transforms, _transforms(scale=False))
    assert "scale=True" in message and "never scaled" in message


def test_lecture_typo_is_named() -> None:
    message = failure(checks.check_transforms, _transforms(std=LECTURE_TYPO_STD))
    assert "lecture's typo" in message and "0.2255" in message


def test_fixed_imagenet_normalization_is_named() -> None:
    def always_imagenet(size: int, normalization: str = "imagenet", augment: bool = False):
        return ref.build_transforms(size, "imagenet", augment=augment)

    message = failure(checks.check_transforms, always_imagenet)
    assert "'imagenet' statistics" in message and "normalization" in message


def test_center_crop_for_training_is_named() -> None:
    message = failure(checks.check_transforms, _transforms(crop=T.CenterCrop))
    assert "always crops the same window" in message and "RandomCrop(64)" in message


def test_missing_resize_is_named() -> None:
    def no_resize(size: int, normalization: str = "imagenet", augment: bool = False):
        mean, std = NORMALIZATIONS[normalization]
        t = T.Compose([T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)])
        return t, t

    message = failure(checks.check_transforms, no_resize)
    assert "wrong size" in message and "Resize(224" in message


def test_nearest_resize_is_caught() -> None:
    def nearest(size: int, normalization: str = "imagenet", augment: bool = False):
        mean, std = NORMALIZATIONS[normalization]
        resize = T.Resize(size if not augment else size + 6, T.InterpolationMode.NEAREST)
        crop = [T.CenterCrop(size)] if augment else []
        tail = [T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
        t = T.Compose([T.ToImage(), resize, *crop, *tail])
        return t, t

    assert "pixels differ" in failure(checks.check_transforms, nearest)


def test_pil_based_transforms_pass() -> None:
    """Resizing through PIL instead of tensors is a legitimate answer: within tolerance."""

    def via_pil(size: int, normalization: str = "imagenet", augment: bool = False):
        mean, std = NORMALIZATIONS[normalization]
        tail = [T.PILToTensor(), T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
        if not augment:
            t = T.Compose([T.ToPILImage(), T.Resize(size), *tail])
            return t, t
        head = [T.ToPILImage(), T.Resize(size + 6)]
        return T.Compose([*head, T.RandomCrop(size), *tail]), T.Compose(
            [*head, T.CenterCrop(size), *tail]
        )

    checks.check_transforms(via_pil)


# --------------------------------------------------------------------------- task 5


def test_optimizer_over_all_parameters_is_named() -> None:
    message = failure(
        checks.check_optimizer,
        lambda model, lr=0.01, momentum=0.9: torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum
        ),
    )
    assert "frozen ones included: " in message and "trainable ones left out: none" in message
    assert "p.requires_grad" in message


def test_optimizer_by_layer_name_is_caught() -> None:
    message = failure(
        checks.check_optimizer,
        lambda model, lr=0.01, momentum=0.9: torch.optim.SGD(
            model.classifier.parameters(), lr=lr, momentum=momentum
        ),
    )
    # Some trainable VGG16 tensors lie outside the classifier; a ResNet has no classifier.
    assert "holds the wrong parameters" in message or "AttributeError" in message


def test_optimizer_with_fixed_lr_is_named() -> None:
    message = failure(
        checks.check_optimizer, lambda model, lr=0.01, momentum=0.9: ref.make_optimizer(model)
    )
    from course.grading_record import optimizer_args

    assert f"lr={optimizer_args(SEED)['lr']}" in message and "lr=0.01" in message


def test_adam_is_named() -> None:
    message = failure(
        checks.check_optimizer,
        lambda model, lr=0.01, momentum=0.9: torch.optim.Adam(
            [p for p in model.parameters() if p.requires_grad], lr=lr
        ),
    )
    assert "torch.optim.SGD" in message and "Adam" in message


# --------------------------------------------------------------------------- task 6


def _stats_from_batches(combine: Callable[[list[torch.Tensor]], tuple]) -> Callable:
    def channel_stats(loader):
        return combine([images.double() for images, _ in loader])

    return channel_stats


def test_mean_of_batch_stds_is_named() -> None:
    def mean_of_stds(batches):
        x = torch.cat(batches)
        stds = torch.stack([b.std(dim=(0, 2, 3), unbiased=False) for b in batches])
        return x.mean(dim=(0, 2, 3)).tolist(), stds.mean(0).tolist()

    message = failure(checks.check_channel_stats, _stats_from_batches(mean_of_stds))
    assert "average of per-batch standard deviations" in message
    assert "sum of their squares" in message


def test_mean_of_batch_means_is_named() -> None:
    def mean_of_means(batches):
        x = torch.cat(batches)
        means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches])
        return means.mean(0).tolist(), x.std(dim=(0, 2, 3), unbiased=False).tolist()

    message = failure(checks.check_channel_stats, _stats_from_batches(mean_of_means))
    assert "average of per-batch means" in message


def test_lecture_statistics_are_named() -> None:
    def lecture(loader):
        return ref.lecture_channel_stats(loader)

    message = failure(checks.check_channel_stats, lecture)
    assert "Your mean matches the average of per-batch means" in message
    assert "Your std matches the average of per-batch standard deviations" in message


def test_lecture_statistics_with_torch_std_default_are_named() -> None:
    """What students write most often: np.std-like code ported to torch, N - 1 included."""

    def lecture_torch(batches):
        means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
        stds = torch.stack([b.std(dim=(0, 2, 3)) for b in batches]).mean(0)
        return means.tolist(), stds.tolist()

    message = failure(checks.check_channel_stats, _stats_from_batches(lecture_torch))
    assert "per-batch means" in message and "per-batch sample standard deviations" in message


def test_sample_std_is_named() -> None:
    def unbiased(batches):
        x = torch.cat(batches)
        return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).tolist()

    assert "N - 1" in failure(checks.check_channel_stats, _stats_from_batches(unbiased))


def test_float32_exact_streaming_passes() -> None:
    """Accumulating in float32 is fine at this size: the tolerance is not a float64 test."""

    def float32(loader):
        n, s, sq = 0, torch.zeros(3), torch.zeros(3)
        for images, _ in loader:
            n += images.numel() // 3
            s += images.sum(dim=(0, 2, 3))
            sq += (images**2).sum(dim=(0, 2, 3))
        mean = s / n
        return mean, (sq / n - mean**2).sqrt()

    checks.check_channel_stats(float32)


def test_wrong_form_is_named() -> None:
    message = failure(checks.check_channel_stats, lambda loader: 0.5)
    assert "wrong form" in message and "(mean, std)" in message


def test_stats_fixture_separates_population_and_sample_std() -> None:
    """The check's tolerance must be tighter than the N vs N - 1 difference it names."""
    from autograder.checks.inputs import STATS_TOLERANCE
    from course.grading_record import stats_fixture

    for seed in (0, SEED, 123456789):
        images, _ = stats_fixture(seed)
        x = images.double() / 255
        gap = (x.std(dim=(0, 2, 3)) - x.std(dim=(0, 2, 3), unbiased=False)).abs().min().item()
        assert gap > 2 * STATS_TOLERANCE


# --------------------------------------------------------------------------- task 7


def _loop(
    *,
    zero_grad=True,
    train_mode=True,
    eval_mode=True,
    step=True,
    per_epoch=False,
    percent=True,
    batch_average=False,
):
    """A training loop with one mistake switched on."""

    def train_and_evaluate(model, optimizer, train_loader, eval_loader, epochs=1):
        losses = []
        for _ in range(epochs):
            if train_mode:
                model.train()
            epoch = []
            for images, labels in train_loader:
                if zero_grad:
                    optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(images), labels)
                loss.backward()
                if step:
                    optimizer.step()
                epoch.append(loss.item())
            losses += [sum(epoch) / len(epoch)] if per_epoch else epoch
        if eval_mode:
            model.eval()
        accuracies, correct, total = [], 0, 0
        with torch.no_grad():
            for images, labels in eval_loader:
                hits = (model(images).argmax(1) == labels).sum().item()
                accuracies.append(hits / len(labels))
                correct, total = correct + hits, total + len(labels)
        accuracy = sum(accuracies) / len(accuracies) if batch_average else correct / total
        return losses, accuracy * (100 if percent else 1)

    return train_and_evaluate


def test_correct_parametrized_loop_passes() -> None:
    checks.check_training(_loop())


@pytest.mark.parametrize(
    ("mistake", "words"),
    [
        ({"zero_grad": False}, ["piled up", "optimizer.zero_grad()"]),
        ({"step": False}, ["did not train", "optimizer.step()"]),
        ({"train_mode": False}, ["not in training mode", "model.train()"]),
        ({"eval_mode": False}, ["evaluated in training mode", "model.eval()"]),
        ({"per_epoch": True}, ["one loss per minibatch", "6 losses"]),
        ({"percent": False}, ["in percent (0-100)"]),
        ({"batch_average": True}, ["averaging per-batch accuracies"]),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, dict) else None,
)
def test_training_mistakes_are_named(mistake: dict[str, bool], words: list[str]) -> None:
    message = failure(checks.check_training, _loop(**mistake))
    for word in words:
        assert word in message


def test_loss_must_fall() -> None:
    def no_learning(model, optimizer, train_loader, eval_loader, epochs=1):
        for group in optimizer.param_groups:
            group["lr"] = 0.0
        return _loop()(model, optimizer, train_loader, eval_loader, epochs)

    message = failure(checks.check_training, no_learning)
    assert "the weights did not train" in message


# --------------------------------------------------------------------------- feedback


def test_feedback_message_layout() -> None:
    error = CheckFailure("Task 9 (x)", "it broke.", "a\nb", "c", "do this " * 20)
    lines = str(error).splitlines()
    assert lines[0] == "Task 9 (x): it broke."
    assert lines[1] == "  Expected: a" and lines[2] == "            b"
    assert lines[3] == "  Found:    c"
    assert lines[4].startswith("  Hint:     do this") and all(len(line) <= 100 for line in lines)
    assert isinstance(error, AssertionError)


def test_summarize_groups_by_layer() -> None:
    names = ["a.0.weight", "a.0.bias", "b.weight"] + [f"c.{i}.weight" for i in range(8)]
    text = summarize(names, limit=3)
    assert text.startswith("a.0 (weight, bias), b (weight), c.0 (weight)")
    assert text.endswith("and 7 more layers")
    assert summarize([]) == "none"


def test_head_that_changes_the_other_flags_is_named() -> None:
    def freeze_then_replace(model: nn.Module, num_classes: int) -> nn.Module:
        model.requires_grad_(False)
        return ref.replace_head(model, num_classes)

    message = failure(checks.check_head_replacement, freeze_then_replace)
    assert "changed which of the other layers train" in message
    assert "lecture's bug" in message and "requires_grad" in message


def test_normalize_before_todtype_names_the_order() -> None:
    def build(size: int, normalization: str = "imagenet", augment: bool = False):
        mean, std = NORMALIZATIONS[normalization]
        steps = [T.ToImage(), T.Resize(size, antialias=True)]
        t = T.Compose([*steps, T.Normalize(mean, std), T.ToDtype(torch.float32, scale=True)])
        return t, t

    message = failure(checks.check_transforms, build)
    assert "`ToDtype(torch.float32, scale=True)` first" in message and "then `Normalize" in message


# --------------------------------------------------------------------------- seeds and tags


def test_prefix_line_begins_the_task_and_the_recorder_tags_its_record(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autograder.tasks import cell_prefixes, draw_seeds, seeds_by_grade_id
    from course import grading_record

    monkeypatch.setenv(grading_record.RECORD_DIR_ENV, str(tmp_path))
    seeds = draw_seeds(grader_checks.TASKS)
    assert len(set(seeds.values())) == len(seeds) and all(0 <= s < 2**62 for s in seeds.values())
    prefixes = cell_prefixes(grader_checks.TASKS, seeds)
    assert set(prefixes) == {t.grade_id for t in grader_checks.TASKS}
    exec(prefixes["task6-test"], {})  # what the driver runs just before the test cell
    grading_record.record_task("stats", ref.channel_stats)
    record = torch.load(tmp_path / "stats.pt", weights_only=True)
    assert record["task"] == "stats" and record["seed"] == seeds["stats"]
    stats = next(t for t in grader_checks.TASKS if t.key == "stats")
    stats.verify(record, seeds_by_grade_id(grader_checks.TASKS, seeds)["task6-test"])
    # The seed is used once: a second call in the same cell (or a later cell) records nothing.
    (tmp_path / "stats.pt").unlink()
    grading_record.record_task("stats", ref.channel_stats)
    assert not (tmp_path / "stats.pt").exists()


def test_recorder_refuses_without_begin_task(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from course import grading_record

    monkeypatch.setenv(grading_record.RECORD_DIR_ENV, str(tmp_path))
    grading_record._BEGUN.clear()
    grading_record.record_task("freeze", reference_freezing)
    grading_record.begin_task("head", 5)  # another task's seed does not open this one
    grading_record.record_task("freeze", reference_freezing)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("tag", ["other seed", "other task", "no tag", "bool seed"])
def test_parent_refuses_a_record_with_another_tag(tag: str) -> None:
    task = next(t for t in grader_checks.TASKS if t.key == "stats")
    data = RECORDERS["stats"](ref.channel_stats, SEED)
    record = {
        "other seed": {"task": "stats", "seed": SEED + 1, "data": data},
        "other task": {"task": "optimizer", "seed": SEED, "data": data},
        "no tag": data,
        "bool seed": {"task": "stats", "seed": True, "data": data},
    }[tag]
    with pytest.raises(CheckFailure) as info:
        task.verify(record, 1 if tag == "bool seed" else SEED)
    assert "not made by this task's test cell during this grading run" in str(info.value)
    task.verify({"task": "stats", "seed": SEED, "data": data}, SEED)  # the right tag passes


@pytest.mark.parametrize(("check", "name", "answer"), CHECKS, ids=[c[0] for c in CHECKS])
def test_no_constant_passes_another_seed(check: str, name: str, answer: Callable) -> None:
    """A record computed correctly for one seed fails for another: every task's inputs vary."""
    task = next(t for t in grader_checks.TASKS if t.check.__name__ == check)
    for seed, other in ((SEED, SEED + 1), (11, 2**61 + 5)):
        buffer = io.BytesIO()
        torch.save(RECORDERS[task.key](answer, seed), buffer)
        buffer.seek(0)
        record = torch.load(buffer, weights_only=True)
        with pytest.raises(CheckFailure):
            task.check(record, other)


def test_every_task_has_a_recorder_and_a_prefix() -> None:
    from course.grading_record import prefix_line

    for task in grader_checks.TASKS:
        assert task.recorder is RECORDERS[task.key]
        line = prefix_line(task.key, 7)
        assert "\n" not in line and line.endswith(f"begin_task({task.key!r}, 7)")
    with pytest.raises(KeyError):
        prefix_line("nonexistent", 1)


def _log_softmax_loop(model, optimizer, train_loader, eval_loader, epochs=1):
    """An honest loop written differently: train() once, log_softmax + nll_loss, a
    progress bar over the loader, the eval loss computed too, accuracy from a tensor."""
    import sys

    from tqdm.auto import tqdm

    model.train()
    losses = []
    for _ in range(epochs):
        for images, labels in tqdm(train_loader, file=sys.stderr, disable=False):
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.nll_loss(torch.log_softmax(model(images), dim=1), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss)
    model.eval()
    hits = []
    with torch.no_grad():
        for images, labels in eval_loader:
            out = model(images)
            nn.functional.cross_entropy(out, labels)
            hits.append(out.argmax(1) == labels)
    return losses, torch.cat(hits).float().mean() * 100


def test_honest_loops_written_differently_pass() -> None:
    checks.check_training(_log_softmax_loop)
    for seed in (0, 2**61 + 3):
        checks.check_training(_log_softmax_loop, seed)
