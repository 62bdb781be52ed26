"""The SQL console cannot leave the store: ClickHouse's parser decides, limits hold, and a
slow console query holds nothing the writer or the project's readers need."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from sinks.client import is_embedded
from sinks.query import (
    GuardedReader,
    QueryError,
    QueryRefusedError,
    QueryServer,
    port_file,
    query,
    query_http,
    read_token_file,
)

pytestmark = pytest.mark.integration

REFUSED = {
    "file table function": "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "environment": "SELECT * FROM file('/proc/self/environ', 'RawBLOB')",
    "file function": "SELECT file('/etc/hostname')",
    "file function, other case": "SELECT FiLe('/etc/hostname')",
    "outfile": "SELECT 'x' INTO OUTFILE '/tmp/hfl-outfile-probe'",
    "outfile append": "SELECT 'x' INTO OUTFILE '/tmp/hfl-outfile-probe' APPEND",
    "format clause": "SELECT 1 FORMAT JSON",
    "insert into function": "INSERT INTO FUNCTION file('/tmp/hfl-probe', 'CSV') SELECT 1",
    "url": "SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'x String')",
    "remote": "SELECT * FROM remote('127.0.0.1:9000', system.one)",
    "mysql": "SELECT * FROM mysql('127.0.0.1:3306', 'd', 't', 'u', 'p')",
    "postgresql": "SELECT * FROM postgresql('127.0.0.1:5432', 'd', 't', 'u', 'p')",
    "s3": "SELECT * FROM s3('http://127.0.0.1:9/b/x.csv')",
    "executable": "SELECT * FROM executable('id', 'TSV', 'x String')",
    "python objects": "SELECT * FROM Python(client)",
    "merge over system": "SELECT * FROM merge('system', 'one')",
    "kill": "KILL QUERY WHERE 1",
    "system": "SYSTEM STOP MERGES",
    "set": "SET max_result_rows = 1",
    "settings clause": "SELECT 1 SETTINGS readonly = 0",
    "two statements": "SELECT 1; SELECT 2",
    "system table": "SELECT * FROM system.processes",
    "system table in IN": "SELECT 1 WHERE 1 IN system.one",
    "information schema": "SELECT * FROM INFORMATION_SCHEMA.TABLES",
    "dictionary": "SELECT dictGet('d', 'a', toUInt64(1))",
    "join table": "SELECT joinGet('j', 'a', 1)",
    "host": "SELECT hostName()",
    "disk": "SELECT filesystemAvailable()",
    "insert": "INSERT INTO runs (run_id) VALUES ('x')",
    "drop": "DROP TABLE runs",
    "create": "CREATE TABLE hfl_probe (x UInt8) ENGINE = Memory",
    "explain": "EXPLAIN SELECT 1",
    "describe": "DESCRIBE TABLE runs",
    "line break in a name": "SELECT * FROM `ru\nns`",
}


@pytest.fixture(scope="module")
def reader(clickhouse: Client, clickhouse_url: str) -> GuardedReader:
    if not is_embedded(clickhouse_url):
        pytest.skip("the in-process guard sessions need the embedded engine")
    guarded = GuardedReader(clickhouse_url)
    yield guarded
    guarded.close()


@pytest.mark.parametrize("sql", list(REFUSED.values()), ids=list(REFUSED))
def test_console_refuses_statement_leaving_the_store(reader: GuardedReader, sql: str) -> None:
    with pytest.raises(QueryRefusedError):
        reader.run(sql, console=True)
    assert not Path("/tmp/hfl-outfile-probe").exists()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count() AS n FROM runs FINAL",
        "WITH q AS (SELECT 1 AS a) SELECT a FROM q",
        "SELECT /* a comment */ run_id FROM default.runs -- trailing",
        "SELECT number FROM numbers(3) UNION ALL SELECT 1",
        "SELECT format('{} {}', 1, 2), lower('A')",
        "SELECT run_id FROM runs WHERE run_id IN (SELECT run_id FROM runs) LIMIT 1",
        # A parameterized view of the project is called like a table function.
        "SELECT * FROM post_trade_quality(since_ns = 0, until_ns = 1) LIMIT 1",
    ],
)
def test_console_runs_select_over_project_tables(reader: GuardedReader, sql: str) -> None:
    _, rows = reader.run(sql, console=True)
    assert isinstance(rows, list)


def test_console_stops_runaway_queries_at_their_limits(reader: GuardedReader) -> None:
    with pytest.raises(QueryError, match=r"TOO_MANY_ROWS|Limit for result"):
        reader.run("SELECT number FROM numbers(1000000)", console=True)
    with pytest.raises(QueryError, match=r"MEMORY_LIMIT|memory limit"):
        reader.run("SELECT groupArray(number) FROM numbers(300000000)", console=True)


def test_console_session_settings_cannot_leak_to_later_callers(reader: GuardedReader) -> None:
    with pytest.raises(QueryRefusedError):
        reader.run("SET max_result_rows = 1", console=True)
    assert reader.run("SELECT number FROM numbers(5)", console=True)[1] == [(n,) for n in range(5)]


def test_slow_console_query_delays_neither_writer_nor_readers(
    clickhouse: Client, reader: GuardedReader
) -> None:
    def slow() -> None:
        with pytest.raises(QueryError, match=r"TIMEOUT|Timeout"):
            reader.run("SELECT count() FROM numbers(100000000000)", console=True)

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.3)
    waits = []
    for _ in range(5):
        started = time.perf_counter()
        reader.run("SELECT 1 AS one", console=False)
        clickhouse.command("SELECT 1")
        waits.append(time.perf_counter() - started)
        time.sleep(0.1)
    worker.join()
    # Both sessions answer while the console query runs (its limit is 10 s): no lock
    # is shared. The bound is loose for a loaded 2-core machine.
    assert max(waits) < 1.0, waits


def test_query_server_needs_its_token_and_refuses_by_rule(
    clickhouse: Client, clickhouse_url: str
) -> None:
    if port_file(clickhouse_url) is None:
        pytest.skip("the query server serves on-disk embedded engines")
    with QueryServer(clickhouse_url) as server:
        port = server.start()
        token = read_token_file(clickhouse_url)
        assert token == server.token
        assert (
            oct(Path(port_file(clickhouse_url)).with_name("query.token").stat().st_mode)[-3:]
            == "600"
        )
        with pytest.raises(QueryError, match="Query-Token"):
            query_http(port, "SELECT 1")
        assert query_http(port, "SELECT 41 + 1 AS answer", token=token) == (["answer"], [(42,)])
        with pytest.raises(QueryRefusedError, match="OUTFILE"):
            query_http(port, "SELECT 1 INTO OUTFILE '/tmp/hfl-outfile-probe'", token=token)
        assert query(clickhouse_url, "SELECT 1 AS one", console=True) == (["one"], [(1,)])
    assert read_token_file(clickhouse_url) == ""


def test_docker_grants_parse_with_clickhouses_own_parser(clickhouse: Client) -> None:
    import xml.etree.ElementTree as ET

    users = Path(__file__).resolve().parents[2] / "docker/clickhouse/users.d/users.xml"
    queries = [q.text or "" for q in ET.parse(users).getroot().iter("query")]
    assert queries
    for grant in queries:
        # users.xml grants name no grantee; the statement needs one to parse.
        statement = f"{grant} TO hfl_probe"
        formatted = clickhouse.query("SELECT formatQuery({q:String})", parameters={"q": statement})
        assert formatted.result_rows[0][0].startswith("GRANT"), grant
