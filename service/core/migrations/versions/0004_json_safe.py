"""Rewrite JSON a store holds from before amllib/jsonsafe.py: NaN, Infinity and \\u0000 in specs, results, events.

Such rows made every JSON function of SQLite and PostgreSQL fail (lists, sorts, lease renewal),
so a store that met a diverging metric could not even start again. Only rows holding one of the
three tokens are read (a text search, no JSON parsed), rewritten with the values as words.
"""

import json

import sqlalchemy
from alembic import op

from amllib.jsonsafe import dumps

revision = "0004"
down_revision = "0003"

TABLES = {"jobs": ("seq", ("spec", "result")), "events": ("seq", ("data",))}
TOKENS = ("NaN", "Infinity", "\\u0000")  # LIKE patterns, with ! (not backslash) as their escape


def upgrade() -> None:
    db = op.get_bind()
    for table, (key, columns) in TABLES.items():
        for column in columns:
            suspect = " OR ".join(f"{column} LIKE :t{index} ESCAPE '!'" for index in range(len(TOKENS)))
            tokens = {f"t{index}": f"%{token}%" for index, token in enumerate(TOKENS)}
            rows = db.execute(sqlalchemy.text(f"SELECT {key}, {column} FROM {table} WHERE {suspect}"), tokens)
            for seq, text in rows.fetchall():
                try:
                    cleaned = dumps(json.loads(text))
                except ValueError:
                    continue  # not JSON at all: nothing this revision knows how to mend
                if cleaned != text:
                    update = sqlalchemy.text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k")
                    db.execute(update, {"v": cleaned, "k": seq})
