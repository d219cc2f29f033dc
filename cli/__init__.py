"""The ``ovp`` command. Subcommands are thin shells over library functions and load lazily, so ``ovp --help``
does not import torch. A domain error (:class:`ovp.errors.OVPError`) becomes one line on stderr and exit code 1.
"""
from __future__ import annotations

import importlib
import logging
import sys

import click

from ovp.errors import OVPError
from ovp.settings import Settings

#: name → ("module:attribute", one-line help). Add a subcommand here and in its module under cli/.
COMMANDS: dict[str, tuple[str, str]] = {
    "neo4j": ("cli.services_cmd:neo4j", "Start, stop or inspect the local Neo4j Community server."),
    "redis": ("cli.services_cmd:redis", "Install (if missing), start, stop or inspect the local Redis."),
    "models": ("cli.models_cmd:models", "Fetch the pretrained models no Python package ships (set-up)."),
    "db": ("cli.db_cmd:db", "Apply the graph schema and inspect the database."),
    "config": ("cli.db_cmd:config", "Print every OVP_* setting and its current value."),
    "kg": ("cli.kg_cmd:kg", "Build, inspect, search and embed the knowledge graph."),
    "link": ("cli.text_cmd:link", "Link mentions of graph entities in captions."),
    "enrich": ("cli.text_cmd:enrich", "Print a caption enriched with its entities' graph knowledge."),
    "keyframes": ("cli.visual_cmd:keyframes", "Pick keyframes from a video."),
    "visual-features": ("cli.visual_cmd:visual_features", "ImageNet CNN features of a video's keyframes."),
    "import": ("cli.import_cmd:import_group", "Turn downloaded videos (yt-dlp folders) into a manifest."),
    "demo-data": ("cli.fusion_cmd:demo_data", "Synthesise a labelled demo set of videos (SYNTHETIC)."),
    "train": ("cli.fusion_cmd:train", "Train the fusion model on a manifest."),
    "evaluate": ("cli.fusion_cmd:evaluate", "Evaluate a trained model on a manifest."),
    "ablate": ("cli.fusion_cmd:ablate", "Train and compare ablations on one split."),
    "profile": ("cli.worker_cmd:profile", "Profile the videos of a manifest (in-process or --submit)."),
    "batch": ("cli.worker_cmd:batch", "Inspect submitted batches, or enqueue their lost work again."),
    "serve": ("cli.api_cmd:serve", "Run the Flask API (development server)."),
    "query": ("cli.api_cmd:query", "Run a named read-only Cypher query from cypher/."),
    "search": ("cli.search_cmd:search", "Find videos by the meaning of a Chinese or English text."),
    "raters": ("cli.review_cmd:raters", "Add, revoke or list reviewer accounts (review pages, ratings API)."),
    "ratings": ("cli.review_cmd:ratings", "Export the reviewers' ratings as a training manifest."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        target, _ = COMMANDS[name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return _not_yet(name)
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help lines come from COMMANDS so that `ovp --help` imports nothing heavy.
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in sorted(COMMANDS)])

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except OVPError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


def _not_yet(name: str) -> click.Command:
    @click.command(name=name, help=COMMANDS[name][1])
    def command() -> None:
        raise click.ClickException(f"`ovp {name}` is not available in this build")

    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """OVP — Ophthalmic Video Profiling over a Neo4j knowledge graph."""
    settings = Settings.from_env()
    level = logging.DEBUG if verbose else getattr(logging, settings.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # The driver logs every retried connection attempt at WARNING; our own error says it in one line.
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    ctx.obj = settings
