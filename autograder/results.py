"""The outcome of grading one submission, as the summary, the CSV and the feedback show it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from autograder.coursedir import CourseDir


@dataclass
class Result:
    """Status, score and reasons of one student's last autograde."""

    student: str
    status: str  # graded | invalid | missing | crashed | timeout | error
    score: float = 0.0  # points awarded so far (autograded, plus manual ones already given)
    max_score: float = 0.0
    manual_pending: float = 0.0  # points waiting for the instructor (the written answer)
    reasons: list[str] = field(default_factory=list)
    failed_tests: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    sandbox: list[str] = field(default_factory=list)
    seed: int | None = None  # the one seed of an exercise without a task table
    seeds: dict[str, int] = field(default_factory=dict)  # task key -> that task's secret seed

    @property
    def reason(self) -> str:
        """All reasons, one line."""
        return "; ".join(self.reasons)

    def save(self, course: CourseDir) -> None:
        """Write ``results/<student>.json``."""
        path = course.result(self.student)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, course: CourseDir, student: str) -> Result:
        """Read ``results/<student>.json`` (unknown keys from other versions are ignored)."""
        data = json.loads(course.result(student).read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
