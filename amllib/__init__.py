"""amllib: the library under the control plane.

Kept free of heavy imports so that `python -m amllib.backends.local_runner`
starts in milliseconds; import what you need from the submodules.
"""
