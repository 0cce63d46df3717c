"""Text a person reads: Jinja2 templates and the filters that keep Python reprs out of them.

Check findings are phrased from the check's direction and result, one template per case
(held, did not hold, undecided); the incident report is one Markdown template.
"""

from ._checks import CheckOutcome, phrase_check, subject_of
from ._env import plain, render

__all__ = ["CheckOutcome", "phrase_check", "plain", "render", "subject_of"]
