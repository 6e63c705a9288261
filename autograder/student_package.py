"""Build what students get: the ``course`` wheel, and the kit an instructor hands out.

The project's own ``pyproject.toml`` installs ``course``, ``solutions`` and
``autograder`` together, which is what instructors and graders want. Students must
not get ``solutions`` (every answer) or ``autograder`` (the hidden checks), so their
wheel has its own metadata, ``packaging/student/pyproject.toml``, a real file built by
setuptools like any other project: it is copied into a staging folder with the
``course`` package, and ``pip wheel --no-build-isolation`` builds it with the setuptools
installed here (no download).

The kit (``python -m autograder student-kit OUT``, ``make kit``) is one zip with the wheel,
the executed lessons, the released exercise notebook (made by ``python -m autograder
setup`` and ``release`` in a temporary course dir), a CIFAR-10 subset of the size the lessons
use (``data/``, with its provenance), the offline pretrained network with its license
(``pretrained/``), a README rendered from ``packaging/student/KIT_README.md`` and the
marker file ``transfer-course-kit.json`` by which ``course.paths.kit_dir`` finds the kit.
Data and network come from ``../shared/data`` beside the checkout; nothing of them is
committed.

This module keeps the names importable from where they always were; the work is in
:mod:`autograder.student_wheel` (the wheel), :mod:`autograder.student_kit_data` (the kit's
CIFAR-10 subset and network) and :mod:`autograder.student_kit` (the kit itself).
"""

from __future__ import annotations

from autograder.student_kit import (
    INSTALL_SIZES,
    KIT_NAME,
    build_student_kit,
    human_size,
    kit_marker,
    kit_readme,
    lesson_notebooks,
    modes_text,
    released_notebook,
)
from autograder.student_kit_data import (
    KIT_PER_CLASS,
    KIT_SEED,
    LESSON_ASSETS,
    LESSON_PER_CLASS,
    MY_IMAGE,
    PRETRAINED_FILES,
    cifar10_subset,
    cifar10_zips,
    data_readme,
    lesson_assets,
    pretrained_dir,
    sha256_file,
)
from autograder.student_wheel import (
    DIST_NAME,
    ROOT,
    STUDENT_PROJECT,
    build_student_wheel,
    course_package_files,
    stage_student_project,
    student_requirements,
)

__all__ = [
    "LESSON_ASSETS",
    "MY_IMAGE",
    "lesson_assets",
    "DIST_NAME",
    "INSTALL_SIZES",
    "KIT_NAME",
    "KIT_PER_CLASS",
    "KIT_SEED",
    "LESSON_PER_CLASS",
    "PRETRAINED_FILES",
    "ROOT",
    "STUDENT_PROJECT",
    "build_student_kit",
    "build_student_wheel",
    "cifar10_subset",
    "cifar10_zips",
    "course_package_files",
    "data_readme",
    "human_size",
    "kit_marker",
    "kit_readme",
    "lesson_notebooks",
    "modes_text",
    "pretrained_dir",
    "released_notebook",
    "sha256_file",
    "stage_student_project",
    "student_requirements",
]
