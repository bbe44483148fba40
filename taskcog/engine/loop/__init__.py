"""The pieces ``taskcog.engine.tasks.Loop`` is assembled from: timing and the misfire rule,
its schedule, hooks, supervision, and the task that runs it. Import ``Loop`` from ``tasks``."""
