"""`ovp keyframes` and `ovp visual-features`: thin shells over encoders.keyframes and encoders.visual."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ovp.settings import Settings


@click.command()
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--keyframes", "k", type=click.IntRange(min=1), default=None, help="Frames to pick (default: OVP_KEYFRAMES).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def keyframes(settings: Settings, video: Path, k: int | None, as_json: bool) -> None:
    """Pick keyframes from VIDEO and say how each was chosen (keyframe, scene_change or uniform)."""
    from encoders.keyframes import extract_keyframes  # lazy: keeps `ovp --help` free of PyAV
    from encoders.media import MediaLimits

    result = extract_keyframes(video, k=k or settings.keyframes, timeout_s=settings.decode_timeout_s,
                               limits=MediaLimits.from_settings(settings))
    report = {
        "video": str(video),
        "duration_s": round(result.duration_s, 6),
        "width": result.width,
        "height": result.height,
        "rotation": result.rotation,
        "keyframes_in_stream": result.keyframes_in_stream,
        "frames": [
            {"timestamp_s": t, "reason": r, "scene_score": s}
            for t, r, s in zip(result.timestamps_s, result.reasons, result.scene_scores)
        ],
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"{video}: {result.duration_s:.2f}s {result.width}x{result.height} rotation {result.rotation}°, "
        f"{result.keyframes_in_stream} key frames in stream, {len(result)} picked"
    )
    for frame in report["frames"]:
        click.echo(f"  {frame['timestamp_s']:10.3f}s  {frame['reason']}")


@click.command("visual-features")
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to write the K×D float32 .npy.")
@click.option("--backbone", type=click.Choice(["efficientnet_lite0", "resnet50", "resnet18"]), default=None,
              help="Default: OVP_VISUAL_BACKBONE.")
@click.option("-k", "--keyframes", "k", type=click.IntRange(min=1), default=None, help="Frames to pick (default: OVP_KEYFRAMES).")
@click.option("--no-cache", is_flag=True, help="Recompute even if the features of this file are cached.")
@click.pass_obj
def visual_features(settings: Settings, video: Path, out: Path, backbone: str | None, k: int | None,
                    no_cache: bool) -> None:
    """Write CNN features of VIDEO's keyframes to --out and print a JSON summary (timestamps, weights used)."""
    import numpy as np

    from encoders.feature_cache import FeatureCache
    from encoders.media import MediaLimits
    from encoders.visual import VisualEncoder, VisualEncoderConfig, encode_video

    overrides = {"backbone": backbone} if backbone else {}
    encoder = VisualEncoder(VisualEncoderConfig.from_settings(settings, **overrides))
    cache = None if no_cache else FeatureCache.from_settings(settings)
    features = encode_video(video, encoder, cache, k=k or settings.keyframes, timeout_s=settings.decode_timeout_s,
                            limits=MediaLimits.from_settings(settings))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, features.features)
    click.echo(
        json.dumps(
            {
                "video": str(video),
                "out": str(out),
                "shape": list(features.features.shape),
                "backbone": features.backbone,
                "weights": features.weights,
                "model_version": features.model_version,
                "video_sha256": features.video_sha256,
                "timestamps_s": features.timestamps_s,
                "reasons": features.reasons,
            },
            indent=2,
        )
    )
