"""The SQL in the docs and the cluster variant of the migrations, checked by ClickHouse.

Each check runs in its own interpreter: chDB hosts one engine per process, and other
tests of the session may hold one on a data directory.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

RUN_TABLE_QUERIES = """
import json, sys
import chdb
from sinks.client import open_client
from sinks.migration import migrate
client = open_client("chdb://memory")
migrate(client)
failures = {}
for number, sql in enumerate(json.loads(sys.stdin.read()), start=1):
    try:
        client.query(sql)
    except Exception as exc:
        failures[number] = str(exc)[:500]
print(json.dumps(failures))
"""

PARSE_CLUSTER_MIGRATIONS = """
import json
import chdb
from sinks.migration import _ledger_ddl, available, statements_for

def escaped(sql):
    return sql.replace("\\\\", "\\\\\\\\").replace("\\n", "\\\\n").replace("\\t", "\\\\t")

checked, failures = 0, []
statements = [s for m in available() for s in statements_for(m, "hfl")] + [_ledger_ddl("hfl")]
for sql in statements:
    try:
        chdb.query("SELECT formatQuery({sql:String})", "CSV", params={"sql": escaped(sql)})
        checked += 1
    except Exception as exc:
        failures.append(str(exc)[:300])
print(json.dumps({"checked": checked, "failures": failures, "statements": statements}))
"""


def run(script: str, stdin: str = "") -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_five_ready_queries_in_tables_md_run_on_a_migrated_store() -> None:
    page = (ROOT / "docs" / "tables.md").read_text()
    queries = re.findall(r"```sql\n(.*?)```", page, re.DOTALL)
    assert len(queries) == 5
    failures = run(RUN_TABLE_QUERIES, json.dumps(queries))
    assert failures == {}


def test_tables_md_lists_every_table_the_migrations_create() -> None:
    page = (ROOT / "docs" / "tables.md").read_text()
    created = set()
    for path in (ROOT / "sinks" / "migrations").glob("*.sql"):
        created |= set(re.findall(r"CREATE (?:TABLE|VIEW) IF NOT EXISTS (\w+)", path.read_text()))
    listed = set(re.findall(r"^\| `(\w+)` \|", page, re.MULTILINE))
    assert created | {"schema_migrations"} == listed


def test_cluster_migrations_parse_and_replicate_every_table() -> None:
    found = run(PARSE_CLUSTER_MIGRATIONS)
    assert found["failures"] == []
    statements = found["statements"]
    assert isinstance(statements, list)
    assert found["checked"] == len(statements)
    creates = [s for s in statements if s.startswith("CREATE TABLE")]
    views = [s for s in statements if s.startswith("CREATE VIEW")]
    assert all(" ON CLUSTER hfl AS" in s for s in views)
    replicated = [s for s in creates if "ReplicatedReplacingMergeTree" in s]
    distributed = [s for s in creates if "ENGINE = Distributed(hfl" in s]
    # Every table gets a Distributed twin, except the migration ledger itself.
    assert len(replicated) == len(distributed) + 1 == len(creates) - len(distributed)
    assert all(re.search(r"\sON CLUSTER hfl\s", s) for s in statements)
    assert not any("non_replicated_deduplication_window" in s for s in statements)


def test_topics_md_has_every_topic_and_its_examples_fit_their_schemas() -> None:
    import jsonschema

    from connectors.topic import ALL_TOPICS

    page = (ROOT / "docs" / "topics.md").read_text()
    sections = dict(re.findall(r"^## `([a-z._]+)`\n(.*?)(?=^## |\Z)", page, re.M | re.S))
    assert set(sections) == {spec.name for spec in ALL_TOPICS}
    examples = 0
    for name, body in sections.items():
        schema = json.loads((ROOT / "docs" / "schemas" / f"{name}.schema.json").read_text())
        check = jsonschema.Draft202012Validator(schema)
        for example in re.findall(r"```json\n(.*?)\n```", body, re.S):
            check.validate(json.loads(example))
            examples += 1
    assert examples >= 14
