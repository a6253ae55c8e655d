"""Reports for marketing: funnels, holdout lift, time-to-value and score trends, in every format."""

from engagement.reports.digest import send_digest
from engagement.reports.model import Report
from engagement.reports.period import Period

__all__ = ["Period", "Report", "send_digest"]
