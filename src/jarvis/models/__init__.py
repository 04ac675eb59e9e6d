"""The student's model files, shared by training and serving: the base model (found, converted
once, cached), its tokens, its threads, and loading it with or without an adapter.

Nothing here knows about tasks' datasets or about serving requests: training and serving both
import this layer, and it imports neither.
"""
