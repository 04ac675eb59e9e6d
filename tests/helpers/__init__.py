"""Test helpers shared by the suite: a tiny task domain for the core's own tests
(:mod:`.tiny`), a live server in a thread (:mod:`.live_server`), a private PostgreSQL
(:mod:`.pg`), the store's racing worker processes (:mod:`.store_workers`), the call envelope's
keys (:mod:`.envelope`). The fake teacher and student ship with the library:
:mod:`jarvis.testing`."""
