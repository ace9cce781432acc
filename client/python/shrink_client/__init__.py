"""A Python client of the Shrink coordinator: upload a model and task, submit, watch, fetch."""

from .client import (CandidateSummary, Client, FileRef, Job, JobSpec, JobState, Progress, RewardWeights,
                     TERMINAL_STATES)
from .errors import ShrinkError
from .files import sha256_file

__all__ = ["CandidateSummary", "Client", "FileRef", "Job", "JobSpec", "JobState", "Progress", "RewardWeights",
           "ShrinkError", "TERMINAL_STATES", "sha256_file"]
