"""Evaluation reports and figures; the same functions as :mod:`kerasseg.reporting`.

Example:
    >>> from kerasseg.report import write_report, format_summary
"""

from kerasseg.reporting import *  # noqa: F401,F403
from kerasseg.reporting import __all__  # noqa: F401
