"""The offline tier: the sample curriculum's loader and the rule-based question generator."""

from factory.offline.curriculum_file import CurriculumError, load_curriculum
from factory.offline.generator import OfflineGenerator

__all__ = ["CurriculumError", "OfflineGenerator", "load_curriculum"]
