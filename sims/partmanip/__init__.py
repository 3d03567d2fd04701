"""The part-level manipulation suite: tasks, skills, predicates, the gymnasium env and the expert."""
