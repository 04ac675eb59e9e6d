"""The dashboard's content: what it shows (:mod:`.views`, plain data from the store) and its
pages and assets (``templates/``, ``static/``: no CDN, no build step). The server serves them
(:mod:`jarvis.server.dashboard_pages`, :mod:`jarvis.server.dashboard_api`)."""
