"""Local services against the real processes: the shared Neo4j and Redis (left running), plus throw-away instances on
free ports under a temporary OVP_HOME for the stop paths, so the servers other tests use are never stopped.
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_client

from kg_builder.graph import Graph
from ovp.errors import ServiceError
from cli.services import EXIT_DOWN, neo4j_server, redis_server
from cli.services.neo4j_server import Neo4jServer
from cli.services.redis_server import RedisServer
from ovp.settings import Settings

OVP = [sys.executable, "-c", "from cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ovp(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OVP, *args], capture_output=True, text=True, timeout=300, env={**os.environ, **env})


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings.from_env()


# --- pure pieces ------------------------------------------------------------------------------------------------


def test_neo4j_config_listens_on_loopback_with_auth_and_can_disable_http(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, neo4j_uri="bolt://127.0.0.1:17687", neo4j_http_port=0, neo4j_heap="512M")
    conf = neo4j_server.render_config(settings, neo4j_server.Neo4jPaths.of(settings))
    assert "server.default_listen_address=127.0.0.1" in conf
    assert "server.bolt.listen_address=:17687" in conf
    assert "server.http.enabled=false" in conf and "server.http.listen_address" not in conf
    assert "dbms.security.auth_enabled=true" in conf
    assert f"server.directories.data={tmp_path / 'neo4j' / 'data'}" in conf
    assert "server.memory.heap.max_size=512m" in conf
    assert "-Xmx512m" in neo4j_server.jvm_args(settings)


def test_neo4j_rejects_a_heap_that_is_not_a_memory_size(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="OVP_NEO4J_HEAP"):
        neo4j_server.jvm_args(Settings(home=tmp_path, neo4j_heap="lots"))


def test_redis_config_binds_loopback_and_persists_the_queues(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, broker_url="redis://127.0.0.1:16379/0")
    conf = redis_server.render_config(settings, redis_server.RedisPaths.of(settings))
    assert "bind 127.0.0.1" in conf and "port 16379" in conf
    assert 'save ""' in conf and "appendonly yes" in conf and "daemonize no" in conf and "requirepass" not in conf
    secret = Settings(home=tmp_path, broker_url="redis://:s3cret-word@127.0.0.1:16379/0")
    assert "requirepass s3cret-word" in redis_server.render_config(secret, redis_server.RedisPaths.of(secret))


# --- the shared Neo4j -------------------------------------------------------------------------------------------


@pytest.mark.neo4j
def test_neo4j_start_is_idempotent_and_status_reports_up(settings: Settings) -> None:
    first = Neo4jServer(settings).start()
    second = Neo4jServer(settings).start()
    assert first.up and second.up
    assert not second.started and second.detail == "already running"
    assert second.pid == first.pid
    current = Neo4jServer(settings).status()
    assert current.up and current.version == f"Neo4j {settings.neo4j_version}"
    with Graph.connect(settings) as graph:
        assert graph.read("RETURN 1 AS one") == [{"one": 1}]


@pytest.mark.neo4j
def test_neo4j_status_cli_prints_up_and_exits_0(settings: Settings) -> None:
    Neo4jServer(settings).start()
    done = ovp("neo4j", "status")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"up at bolt://127.0.0.1:{settings.neo4j_bolt_port} (pid ")
    assert f"Neo4j {settings.neo4j_version})" in done.stdout


@pytest.mark.neo4j
def test_neo4j_status_on_a_wrong_port_reports_down_with_exit_3() -> None:
    port = free_port()
    done = ovp("neo4j", "status", OVP_NEO4J_URI=f"bolt://127.0.0.1:{port}")
    assert done.returncode == EXIT_DOWN
    assert done.stdout.startswith("down")
    as_json = ovp("neo4j", "status", "--json", OVP_NEO4J_URI=f"bolt://127.0.0.1:{port}")
    assert as_json.returncode == EXIT_DOWN
    assert json.loads(as_json.stdout)["up"] is False


@pytest.mark.neo4j
def test_neo4j_start_on_another_port_from_the_same_home_is_refused_not_awaited(settings: Settings) -> None:
    Neo4jServer(settings).start()
    other = dataclasses.replace(settings, neo4j_uri=f"bolt://127.0.0.1:{free_port()}")
    with pytest.raises(ServiceError, match="already runs on bolt port"):
        Neo4jServer(other).start(timeout_s=5)
    assert Neo4jServer(settings).status().up


@pytest.mark.neo4j
@pytest.mark.redis
def test_neo4j_start_refuses_a_port_held_by_another_process(tmp_path: Path, settings: Settings) -> None:
    RedisServer(settings).start()
    # Redis holds this port; the check runs before any jar is resolved, so this is quick.
    clash = Settings(home=tmp_path, neo4j_uri=f"bolt://127.0.0.1:{settings.redis_port}", neo4j_http_port=0)
    with pytest.raises(ServiceError, match=rf"port {settings.redis_port} is already used by pid \d+ .*redis-server"):
        Neo4jServer(clash).start()
    # ... and stop leaves the foreign process alone.
    result = Neo4jServer(clash).stop()
    assert not result.stopped and "which ovp did not start" in result.detail
    assert RedisServer(settings).status().up


@pytest.mark.neo4j
@pytest.mark.slow
def test_a_second_neo4j_starts_stops_and_removes_its_pid_file(tmp_path: Path, settings: Settings) -> None:
    shared = neo4j_server.ensure_artifacts(settings)
    own = Settings(home=tmp_path, neo4j_uri=f"bolt://127.0.0.1:{free_port()}", neo4j_http_port=0,
                   neo4j_heap="512m", neo4j_pagecache="64m", neo4j_password="second-instance-pw")
    paths = neo4j_server.Neo4jPaths.of(own)
    # Reuse the shared jars instead of copying 130 MB again.
    paths.root.mkdir(parents=True)
    paths.lib.symlink_to(shared.lib, target_is_directory=True)
    try:
        up = Neo4jServer(own).start()
        assert up.up and up.started and up.ours
        assert paths.pid_file.read_text().strip() == str(up.pid)
        with Graph.connect(own) as graph:
            assert graph.read("RETURN 2 AS two") == [{"two": 2}]
    finally:
        stopped = Neo4jServer(own).stop()
    assert stopped.stopped and stopped.pid == up.pid
    assert not paths.pid_file.exists()
    assert not Neo4jServer(own).status().up
    assert Neo4jServer(own).stop().detail == "not running"
    assert Neo4jServer(settings).status().up, "the shared Neo4j must survive"


# --- Redis ------------------------------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_start_is_idempotent_and_answers_ping(settings: Settings) -> None:
    first = RedisServer(settings).start()
    second = RedisServer(settings).start()
    assert first.up and second.up and not second.started and second.pid == first.pid
    assert (second.version or "").startswith("Redis ")
    with redis_client.Redis(host="127.0.0.1", port=settings.redis_port) as client:
        assert client.ping() is True
    done = ovp("redis", "status")
    assert done.returncode == 0 and done.stdout.startswith(f"up at redis://127.0.0.1:{settings.redis_port} (pid ")


@pytest.mark.redis
def test_a_second_redis_starts_stops_and_removes_its_pid_file(tmp_path: Path) -> None:
    own = Settings(home=tmp_path, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    paths = redis_server.RedisPaths.of(own)
    try:
        up = RedisServer(own).start()
        assert up.up and up.started and up.ours
    finally:
        stopped = RedisServer(own).stop()
    assert stopped.stopped and stopped.pid == up.pid
    assert not paths.pid_file.exists()
    done = ovp("redis", "status", OVP_HOME=str(tmp_path), OVP_BROKER_URL=own.broker_url)
    assert done.returncode == EXIT_DOWN and done.stdout.strip() == "down"


@pytest.mark.redis
def test_a_redis_with_a_password_keeps_its_queue_across_a_restart(tmp_path: Path) -> None:
    """`ovp redis start` honours the password of OVP_BROKER_URL and persists what is queued: a message queued before
    `stop` is there after `start` (it was lost before the append-only file)."""
    own = Settings(home=tmp_path, broker_url=f"redis://:pw-{os.getpid()}@127.0.0.1:{free_port()}/0")
    try:
        RedisServer(own).start()
        with pytest.raises(redis_client.AuthenticationError):
            redis_client.Redis(host="127.0.0.1", port=own.redis_port).ping()
        with redis_client.Redis.from_url(own.broker_url) as client:
            client.lpush("profiles", b"queued before the restart")
        RedisServer(own).stop()
        RedisServer(own).start()
        with redis_client.Redis.from_url(own.broker_url) as client:
            assert client.lrange("profiles", 0, -1) == [b"queued before the restart"]
    finally:
        RedisServer(own).stop()


@pytest.mark.redis
def test_stop_ignores_a_stale_pid_file_pointing_at_someone_else(tmp_path: Path) -> None:
    own = Settings(home=tmp_path, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    paths = redis_server.RedisPaths.of(own)
    paths.root.mkdir(parents=True)
    paths.pid_file.write_text(f"{os.getpid()}\n")  # alive, but pytest is not a redis-server
    result = RedisServer(own).stop()
    assert not result.stopped and "stale pid file" in result.detail
    assert not paths.pid_file.exists()


@pytest.mark.neo4j
@pytest.mark.redis
def test_stop_with_settings_for_another_port_leaves_our_servers_running() -> None:
    # Settings that name another port (another clone, another service) must never stop the servers of this home.
    settings = Settings.from_env()
    other = dataclasses.replace(settings, neo4j_uri="bolt://127.0.0.1:17688", broker_url="redis://127.0.0.1:16380/0")
    for server in (Neo4jServer, RedisServer):
        result = server(other).stop()
        assert not result.stopped and result.detail.startswith("not stopped")
        assert server(settings).status().up
