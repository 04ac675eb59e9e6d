"""Router overhead benchmark; same as ``jarvis bench router``. Run: python benchmarks/router.py"""

from jarvis.cli.app import app

if __name__ == "__main__":
    app(["bench", "router"])
