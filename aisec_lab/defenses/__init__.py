"""Defenses: preprocessing defenses evaluated adaptively, adversarial-training recipes, detectors."""

from .preprocessing import DEFENSES, DefenseInfo, defend, describe_defense, list_defenses, register_defense  # noqa: E402
from .detectors import DETECTORS, Detector, train_detector, detection_section, list_detectors  # noqa: E402
