"""Subtitle files (WebVTT ``.vtt``, SubRip ``.srt``) read as plain text: what is said in a video, timing dropped.

Automatic captions (YouTube's speech recognition, Bilibili's ``ai-*`` tracks) are written as *rolling* cues: each cue
repeats the line the previous cue ended with and adds the next one word by word (``hello<00:00:00.560><c> world</c>``),
and a 10 ms cue in between shows the finished line again. Read naively, every line would come out two or three times.
:func:`subtitle_text` with ``automatic=True`` keeps a line only when it differs from the line kept before it, which
turns the rolling cues back into the spoken sequence; uploaded subtitles are kept cue by cue (a person who says
"no. no." in two cues said it twice).

Lines are joined with a space, except between two CJK characters (Chinese is written without spaces, and a cue break
inside a word must not split it for the linker).
"""
from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

#: Subtitle formats read into a transcript.
READ_EXTENSIONS = ("vtt", "srt")
#: Other formats yt-dlp can write as subtitles: reported as not read, so a user knows to ask for vtt or srt.
UNREAD_EXTENSIONS = ("ass", "ssa", "ttml", "srv1", "srv2", "srv3", "json3", "lrc", "sbv", "dfxp")
#: A subtitle of a multi-hour video is a few hundred kilobytes; past this the file is not a subtitle.
MAX_SUBTITLE_BYTES = 8 << 20

_TIMING = re.compile(r"-->")
_TAG = re.compile(r"<[^>]*>")  # <c>, <i>, <v Speaker>, <00:00:01.000> word timings
_ASS_OVERRIDE = re.compile(r"\{\\[^}]*\}")  # {\an8} positioning codes some .srt files carry
_WORD_TIMING = re.compile(r"<\d{1,2}:\d{2}(?::\d{2})?\.\d{3}>")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


class SubtitleError(ValueError):
    """A subtitle file that cannot be read as text; the message says what is wrong with it."""


@dataclass(frozen=True)
class Subtitle:
    """One subtitle file's text: ``lines`` in order, and whether it was read as automatic (deduplicated)."""

    path: Path
    lines: tuple[str, ...]
    automatic: bool

    @property
    def text(self) -> str:
        return join_lines(self.lines)


def decode_subtitle(data: bytes) -> str:
    """The text of a subtitle file's bytes: UTF-8 (with or without a byte-order mark) or UTF-16 with its mark.

    Raises:
        SubtitleError: NUL bytes (binary data) or bytes that are not UTF-8; the message names the first bad byte.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise SubtitleError(f"marked UTF-16 but not valid UTF-16 at byte {exc.start}") from None
    if b"\x00" in data:
        raise SubtitleError("holds NUL bytes: binary data, not a subtitle")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubtitleError(
            f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); yt-dlp writes UTF-8, so convert the file, "
            "e.g. iconv -f GB18030 -t UTF-8"
        ) from None


def cue_texts(text: str, kind: str) -> list[list[str]]:
    """The text lines of each cue of a ``"vtt"`` or ``"srt"`` file, in file order, markup and timing removed.

    Raises:
        SubtitleError: a ``.vtt`` without its ``WEBVTT`` header, or a file with no timed cue at all.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if kind == "vtt" and not text.lstrip("\ufeff").startswith("WEBVTT"):
        raise SubtitleError("not a WebVTT file (it does not start with WEBVTT)")
    cues: list[list[str]] = []
    timed = 0
    # Cues end at an empty line; YouTube's automatic cues hold lines of one space, which are not the end of a cue.
    for block in re.split(r"\n{2,}", text):
        rows = block.split("\n")
        at = next((i for i, row in enumerate(rows) if _TIMING.search(row)), None)
        if at is None:
            continue  # the WEBVTT header, NOTE, STYLE and REGION blocks, stray text
        timed += 1
        lines = [clean_line(row) for row in rows[at + 1:]]
        cues.append([line for line in lines if line])
    if not timed:
        raise SubtitleError(f"no timed cue found (a .{kind} cue has a 'start --> end' line)")
    return cues


def clean_line(row: str) -> str:
    """A cue line without tags, word timings, ASS codes or HTML entities, its white space collapsed."""
    row = _ASS_OVERRIDE.sub("", _TAG.sub("", row))
    return " ".join(html.unescape(row).replace("\u200e", "").replace("\u200f", "").split())


def has_word_timings(text: str) -> bool:
    """Whether cues carry inline word timings: the mark of rolling automatic captions."""
    return _WORD_TIMING.search(text) is not None


def read_subtitle(path: Path, *, automatic: bool | None = None) -> Subtitle:
    """Read a ``.vtt`` or ``.srt`` file into its text lines.

    Args:
        path: the file; its extension says the format.
        automatic: deduplicate rolling lines (automatic captions); ``None`` decides from the file (word timings).

    Raises:
        SubtitleError: the file is too big, not text, not UTF-8, or has no cue (the message says which).
        OSError: it cannot be read.
    """
    kind = path.suffix.lower().lstrip(".")
    if kind not in READ_EXTENSIONS:
        raise SubtitleError(f".{kind} subtitles are not read; ask yt-dlp for --sub-format vtt or --convert-subs srt")
    size = path.stat().st_size
    if size > MAX_SUBTITLE_BYTES:
        raise SubtitleError(f"{size / 2**20:.1f} MiB, more than the {MAX_SUBTITLE_BYTES >> 20} MiB a subtitle may have")
    text = decode_subtitle(path.read_bytes())
    if automatic is None:
        automatic = has_word_timings(text)
    cues = cue_texts(text, kind)
    lines: list[str] = []
    for cue in cues:
        for line in cue:
            if automatic and lines and line == lines[-1]:
                continue
            lines.append(line)
    return Subtitle(path, tuple(lines), automatic)


def join_lines(lines: tuple[str, ...] | list[str]) -> str:
    """Lines joined by a space, or by nothing between two CJK characters."""
    out: list[str] = []
    for line in lines:
        if out and not (_CJK.match(out[-1][-1]) and _CJK.match(line[0])):
            out.append(" ")
        out.append(line)
    return "".join(out)
