"""The core: the vocabulary every other layer speaks, and nothing else.

A task and its calls (:mod:`.tasks`, :mod:`.results`), how a call becomes messages and an
answer becomes text (:mod:`.prompts`, :mod:`.codec`), what makes an answer good
(:mod:`.validate`, :mod:`.freetext`) and close to the teacher's (:mod:`.agreement`), the train
/ held-out split (:mod:`.split`), the contract every model sits behind (:mod:`.backends`), the
events the router emits (:mod:`.events`), per-task settings (:mod:`.task_settings`), the
errors (:mod:`.errors`). No I/O, no database, no model: the layers above bring those.
"""
