"""The core: the job store, the live feed, job state, job kinds and shapes, and the worker that carries jobs out."""
