"""Helpers for the transfer-learning course: data, models, training and plots.

Students import this package from the lessons and the exercise. It never
imports ``solutions`` or ``autograder``.
"""

__version__ = "0.1.0"
