"""The names the autograder and the grading kernel share, defined once.

The grader sets these in the kernel's environment and makes the folder in the scratch
folder; :mod:`course.grading_record` reads them there. This module imports nothing, so the
grader (which never imports torch) can use the same names.
"""

from __future__ import annotations

#: Environment variable the autograder sets in the grading kernel: the record folder.
RECORD_DIR_ENV = "COURSE_RECORD_DIR"
#: Environment variable with a legacy whole-notebook seed (the driver's cell prefixes give
#: each task its own seed instead).
SEED_ENV = "COURSE_RECORD_SEED"
#: The record folder's name inside a submission's scratch folder.
RECORD_FOLDER = "records"
