"""Platform adapters: one module per platform behind the `Publisher` protocol."""

from jobs.adapters.base import Publisher
from jobs.adapters.dryrun import DryRunPublisher

__all__ = ["DryRunPublisher", "Publisher"]
