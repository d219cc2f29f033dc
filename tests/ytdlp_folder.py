"""A yt-dlp download folder for tests and benches, made from the info-file fixtures of ``tests/data/ytdlp`` (shaped
after yt-dlp's YouTube, Bilibili, Douyin, TikTok and Vimeo extractors): each fixture copied under new ids, with its
subtitles and a media file beside it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

FIXTURES = Path(__file__).parent / "data" / "ytdlp"
#: The bytes of a stand-in media file: the import never decodes media, so an MP4 signature is enough for it.
STAND_IN = b"\x00\x00\x00\x18ftypmp42"


def fixture_infos() -> list[Path]:
    return sorted(FIXTURES.glob("*.info.json"))


def build_download_folder(
    out: Path,
    copies: int = 1,
    *,
    media: Callable[[int, dict], Path | None] | None = None,
    id_suffix: str = "",
) -> list[str]:
    """Write ``copies`` × the fixtures into ``out`` (made if missing); returns the yt-dlp ids written.

    Args:
        out: the folder.
        copies: how many times each fixture is written; copy ``c`` > 0 gets ``c`` appended to its id and file name.
        media: ``(n, info) → file`` to copy in as the n-th video's media (its extension becomes the info's ``ext``);
            ``None`` (or a function returning None) writes a stand-in file.
        id_suffix: appended to every id (ids unique to one test run).
    """
    out.mkdir(parents=True, exist_ok=True)
    ids = []
    n = 0
    for copy in range(copies):
        for source in fixture_infos():
            info = json.loads(source.read_text(encoding="utf-8"))
            info["id"] = f"{info['id']}{copy or ''}{id_suffix}"
            original = source.name.removesuffix(".info.json")
            stem = original + (f" copy{copy}" if copy else "") + id_suffix
            chosen = media(n, info) if media is not None else None
            if chosen is not None:
                info["ext"] = chosen.suffix.lstrip(".")
                shutil.copyfile(chosen, out / f"{stem}{chosen.suffix}")
            else:
                (out / f"{stem}.{info['ext']}").write_bytes(STAND_IN)
            (out / f"{stem}.info.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
            for extra in FIXTURES.iterdir():
                if extra.name.startswith(original + ".") and not extra.name.endswith(".info.json"):
                    shutil.copyfile(extra, out / (stem + extra.name[len(original):]))
            ids.append(info["id"])
            n += 1
    return ids
