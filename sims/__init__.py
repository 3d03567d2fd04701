"""sims: simulation backends, procedural part-annotated objects and the part-level manipulation suite.

`sims` never imports `robopolicy`. Importing it registers the suites' gymnasium ids
(`sims.registration`; cheap: no simulator is loaded).
"""

from sims.registration import register_envs

register_envs()
