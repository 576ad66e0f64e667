"""The notebook UI of crlhf: line annotation, annotation sessions, the live crowd dashboard and
the threshold explorer. Widgets only show and collect; the method lives in ``crlhf``.

- :class:`LineAnnotator` (``widgets.annotator``): one program, correct/wrong per line, keyboard.
- :class:`AnnotationSession` (``widgets.session``): one annotator's queue from a ``LabelStore``.
- :class:`CrowdDashboard` (``widgets.dashboard``): live posteriors, p_i curves, leaderboard.
- :class:`ThresholdExplorer` (``widgets.ablation``): sliders for tau, lam, nu, gold_certainty.
- :class:`ClassroomApp` (``widgets.classroom``): the app ``crlhf classroom`` serves with Voila.
"""

from .ablation import ThresholdExplorer
from .annotator import LineAnnotator
from .classroom import ClassroomApp
from .dashboard import CrowdDashboard
from .session import AnnotationSession

__all__ = ["AnnotationSession", "ClassroomApp", "CrowdDashboard", "LineAnnotator", "ThresholdExplorer"]
