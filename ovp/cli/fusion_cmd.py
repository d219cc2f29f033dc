"""`ovp demo-data` (and, later, train / evaluate / ablate): thin shells over the fusion package."""
from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("demo-data")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--videos", "-n", type=click.IntRange(min=0), default=200, show_default=True, help="Decodable videos to make.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed → same manifest and video files.")
@click.option("--corrupt", type=click.IntRange(min=0), default=0, show_default=True,
              help="Extra entries whose files do not decode (truncated MP4 / text renamed .mp4), for failure tests.")
@click.option("--size", type=click.Choice(["160", "224"]), default="160", show_default=True, help="Frame width and height.")
@click.option("--lexicon", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Lexicon JSONL to label with [default: kg_builder/data/lexicon.jsonl].")
def demo_data(out: Path, videos: int, seed: int, corrupt: int, size: str, lexicon: Path | None) -> None:
    """Synthesise a SYNTHETIC labelled demo set in OUT: manifest.jsonl, videos/synthetic_*.mp4, README.txt.

    Diseases come from the lexicon's profile labels; the latent model behind the labels is in docs/demo-data.md.
    """
    from tqdm import tqdm

    from fusion.demo_data import generate_demo_set

    if videos + corrupt == 0:
        raise click.BadParameter("nothing to make: give --videos or --corrupt above 0", param_hint="--videos")
    with tqdm(total=videos + corrupt, unit="video", desc="demo-data", disable=not sys.stderr.isatty()) as bar:
        summary = generate_demo_set(out, videos=videos, seed=seed, corrupt=corrupt, size=int(size),
                                    lexicon_path=lexicon, on_video=bar.update)
    click.echo(summary.line())
