"""The main job: simulated players play the RPG through JARVIS until the student takes over
(``jarvis demo``). An app on top of the runtime; the RPG domain itself is :mod:`jarvis.rpg`."""
