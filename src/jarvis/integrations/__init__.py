"""Ways into JARVIS from other programs: Jac/byLLM (``jac``); OpenAI clients use the server."""
