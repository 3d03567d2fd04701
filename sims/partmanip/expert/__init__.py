"""The scripted expert as a skill executor: `ScriptedExpert` runs a task's skill chain (or any
skill call given to `start_skill`) by TCP waypoints planned from ground truth; `ExpertParams`
holds every tuning it uses."""

from sims.partmanip.expert.executor import ScriptedExpert
from sims.partmanip.expert.params import ExpertParams
from sims.partmanip.expert.skills.base import ExpertFailure
from sims.partmanip.expert.state import SkillContext
from sims.partmanip.expert.trajectory import Segment

__all__ = ["ExpertFailure", "ExpertParams", "ScriptedExpert", "Segment", "SkillContext"]
