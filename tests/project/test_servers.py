"""The test harness itself: real redis-server and PostgreSQL fixtures."""

import pytest


@pytest.mark.redis
def test_redis_answers_ping_and_is_flushed(redis_server, redis_url):
    import redis

    assert redis_url == redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    r = redis.Redis.from_url(redis_url)
    try:
        assert r.ping() is True
        assert r.dbsize() == 0
        r.set("qadmin:harness", "1")  # the next redis_url user must not see this
    finally:
        r.close()


@pytest.mark.redis
def test_redis_url_starts_empty(redis_url):
    import redis

    r = redis.Redis.from_url(redis_url)
    try:
        assert r.dbsize() == 0
    finally:
        r.close()


@pytest.mark.redis
def test_redis_stop_and_start_on_same_port(redis_server, redis_url):
    import redis

    port = redis_server.port
    redis_server.stop()
    try:
        assert not redis_server.running
        r = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
        with pytest.raises(redis.ConnectionError):
            r.ping()
        r.close()
    finally:
        redis_server.start()
    assert redis_server.running and redis_server.port == port
    r = redis.Redis.from_url(redis_url)
    try:
        assert r.ping() is True
    finally:
        r.close()


@pytest.mark.postgres
def test_postgres_database_is_writable(postgres_server, postgres_url):
    import sqlalchemy as sa

    assert postgres_url.startswith(f"postgresql+psycopg://postgres@127.0.0.1:{postgres_server.port}/t_")
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id serial PRIMARY KEY, v text)"))
            conn.execute(sa.text("INSERT INTO t (v) VALUES ('a'), ('b')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 2
    finally:
        engine.dispose()


def _tables(url):
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.fixture
def second_postgres_url(postgres_server):
    name = postgres_server.create_database()
    yield postgres_server.url_for(name)
    postgres_server.drop_database(name)


@pytest.mark.postgres
def test_postgres_url_gives_distinct_empty_databases(postgres_url, second_postgres_url):
    import sqlalchemy as sa

    assert postgres_url != second_postgres_url
    assert _tables(postgres_url) == [] and _tables(second_postgres_url) == []
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_here (id int)"))
    finally:
        engine.dispose()
    assert _tables(postgres_url) == ["only_here"]
    assert _tables(second_postgres_url) == []


@pytest.mark.postgres
def test_postgres_stop_and_start(postgres_server, postgres_url):
    import psycopg

    postgres_server.stop()
    assert not postgres_server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_server.conninfo(), connect_timeout=2)
    postgres_server.start()
    with postgres_server.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_sqlite_url(sqlite_url, tmp_path):
    assert sqlite_url == f"sqlite:///{tmp_path}/qadmin.db"


def test_sql_url_is_a_sql_database(sql_url):
    import sqlalchemy as sa

    engine = sa.create_engine(sql_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE x (id int)"))
            conn.execute(sa.text("INSERT INTO x VALUES (1)"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id FROM x")).scalar() == 1
    finally:
        engine.dispose()


def test_any_url_scheme(any_url, request):
    kind = request.node.callspec.params["any_url"]
    expected = {"sqlite": "sqlite:///", "postgres": "postgresql+psycopg://", "redis": "redis://"}[kind]
    assert any_url.startswith(expected)
