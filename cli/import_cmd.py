"""`ovp import ytdlp`: a thin shell over :func:`fusion.ytdlp_import.import_ytdlp` and :func:`fusion.manifest.write_manifest`."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ovp.errors import OVPError
from ovp.settings import Settings


@click.group("import")
def import_group() -> None:
    """Turn downloaded videos into a manifest."""


@import_group.command("ytdlp")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Manifest to write.")
@click.option("--platform-default", default=None, help="Platform of info files that name no extractor.")
@click.option("--weak-diseases", is_flag=True,
              help="Propose disease labels from the mentions linked in each video's text (marked weak).")
@click.pass_obj
def ytdlp(settings: Settings, folder: Path, out: Path, platform_default: str | None, weak_diseases: bool) -> None:
    """Read the *.info.json files yt-dlp wrote under FOLDER (with their media and subtitles) into manifest --out.

    Every file that cannot be used is printed as `path: what is wrong` on stderr; the rest are imported.
    """
    from tqdm import tqdm

    from fusion.manifest import write_manifest
    from fusion.ytdlp_import import import_ytdlp

    try:
        with tqdm(unit="file", desc="import", disable=not sys.stderr.isatty()) as bar:
            result = import_ytdlp(folder, platform_default=platform_default, on_file=bar.update)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    for problem in result.problems:
        click.echo(("skipped " if problem.skipped else "note ") + problem.line(), err=True)
    if not result.entries:
        raise OVPError(f"no video imported from {folder}: {result.summary()}",
                       hint="each video needs NAME.info.json and its media file (yt-dlp --write-info-json)")
    entries = list(result.entries)
    weak_line = ""
    if weak_diseases:
        from fusion.weak_labels import propose_diseases

        entries, proposed = propose_diseases(entries, settings)
        weak_line = f"; weak disease labels proposed for {proposed} of {len(entries)} videos"
    write_manifest(entries, out)
    click.echo(f"{result.summary()}{weak_line} → {out}")
