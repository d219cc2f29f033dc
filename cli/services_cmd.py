"""``ovp neo4j …`` and ``ovp redis …``: thin shells over :class:`cli.services.neo4j_server.Neo4jServer` and
:class:`cli.services.redis_server.RedisServer`.

``status`` exits 0 when the service is up and 3 (LSB "not running") when it is not, so scripts can branch on it.
"""
from __future__ import annotations

import json

import click

from cli.services import EXIT_DOWN, ServerStatus
from cli.services.local_server import LocalServer
from cli.services.neo4j_server import Neo4jServer
from cli.services.redis_server import RedisServer
from ovp.settings import Settings


def _echo_status(result: ServerStatus, as_json: bool) -> None:
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.describe())


def _service_group(name: str, title: str, server: type[LocalServer]) -> click.Group:
    """The same three subcommands for each service, over ``server(settings)``."""

    @click.group(name=name, help=f"Start, stop or inspect the local {title}.")
    def group() -> None:
        pass

    @group.command(help=f"Start the local {title} and wait until it answers (does nothing if it is up).")
    @click.option("--timeout", "timeout_s", type=float, default=server.start_timeout_s, show_default=True,
                  help="Seconds to wait for the server to answer.")
    @click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
    @click.pass_obj
    def start(settings: Settings, timeout_s: float, as_json: bool) -> None:
        result = server(settings).start(timeout_s)
        if as_json:
            _echo_status(result, True)
        elif result.started:
            click.echo(f"started in {result.elapsed_s:.1f} s: {result.describe()}")
        else:
            click.echo(f"already running: {result.describe()}")

    @group.command(help=f"Stop the {title} that `ovp {name} start` launched (never another one).")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @click.pass_obj
    def stop(settings: Settings, as_json: bool) -> None:
        result = server(settings).stop()
        click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.describe())

    @group.command(help=f"Print whether the {title} is up; exit code 0 when up, {EXIT_DOWN} when down.")
    @click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
    @click.pass_context
    def status(ctx: click.Context, as_json: bool) -> None:
        result = server(ctx.obj).status()
        _echo_status(result, as_json)
        if not result.up:
            ctx.exit(EXIT_DOWN)

    return group


neo4j = _service_group("neo4j", "Neo4j Community server", Neo4jServer)
redis = _service_group("redis", "Redis server (Celery broker)", RedisServer)
