"""Small example tasks that run offline, each with a procedural teacher.

They are not loaded by default; load one with ``JARVIS_TASK_MODULES=jarvis.examples.text``
(or ``--app jarvis.examples.text``).
"""
