"""What "the store is unchanged" means, and a JSONL line an attacker would try to import."""

from __future__ import annotations

import json

import sqlalchemy as sa

from jarvis.store import Store, schema

__all__ = ["IMPORT_LINE", "row_counts"]

IMPORT_LINE = json.dumps(
    {
        "messages": [
            {"role": "user", "content": "create_next_level\n\nlast_levels = []\ndifficulty = 2"},
            {
                "role": "assistant",
                "content": json.dumps(
                    {
                        "name": 1,
                        "difficulty": 2,
                        "time": 300,
                        "width": 12,
                        "height": 12,
                        "num_wall": 6,
                        "num_enemies": 3,
                    }
                ),
            },
        ]
    }
)


def row_counts(store: Store) -> dict[str, int]:
    """Rows in every table of the store: what "nothing changed" means."""
    with store.engine.connect() as conn:
        return {
            name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in schema.metadata.tables.items()
        }
