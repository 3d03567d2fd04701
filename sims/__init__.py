"""sims: simulation backends, procedural part-annotated objects and the part-level manipulation suite.

`sims` never imports `robopolicy`.
"""
