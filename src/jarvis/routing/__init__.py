"""Routing one call: the router (student → retry → teacher fallback → log), how a valid teacher
answer becomes a training example, and the shadow checks that watch the router's events."""
