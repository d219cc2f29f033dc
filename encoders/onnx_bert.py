"""A BERT exported to ONNX, turned back into a transformers ``BertModel`` directory.

bge-small-zh-v1.5 reaches us as an ONNX graph (inside a Maven artifact), but the fusion wants BERT token states from
the same transformers code path as every other text model (GPU when present, the same truncation and pooling). The
export keeps the tensors of a ``BertModel``: embeddings, layer norms and biases under their PyTorch names, and each
linear layer's weight as an anonymous ``MatMul`` initializer (``onnx::MatMul_541``, stored input × output). A weight
is named by the bias its ``MatMul`` output is added to, and transposed. The architecture is read off the graph too:
the hidden size from the embeddings, the head size from the constant the attention scores are divided by
(√head_dim), the layer-norm epsilon from the constant added to the variance.

:func:`convert` writes ``config.json``, ``model.safetensors`` and the tokenizer; :func:`max_difference` runs the ONNX
graph (onnxruntime) and the converted model on the same texts, the check that the copy is faithful.
"""
from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ovp.errors import ModelNotFound

logger = logging.getLogger(__name__)

_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.")


@dataclass(frozen=True)
class BertTensors:
    """A BERT's tensors by their ``BertModel`` names, and the hyperparameters read off the ONNX graph."""

    state: dict[str, np.ndarray]
    num_heads: int
    layer_norm_eps: float

    @property
    def hidden_size(self) -> int:
        return int(self.state["embeddings.word_embeddings.weight"].shape[1])

    def config(self) -> dict[str, Any]:
        """A ``BertConfig`` (as a dict) describing these tensors."""
        layers = {int(m.group(1)) for key in self.state if (m := _LAYER.match(key))}
        return {
            "model_type": "bert",
            "architectures": ["BertModel"],
            "vocab_size": int(self.state["embeddings.word_embeddings.weight"].shape[0]),
            "hidden_size": self.hidden_size,
            "num_hidden_layers": len(layers),
            "num_attention_heads": self.num_heads,
            "intermediate_size": int(self.state["encoder.layer.0.intermediate.dense.bias"].shape[0]),
            "max_position_embeddings": int(self.state["embeddings.position_embeddings.weight"].shape[0]),
            "type_vocab_size": int(self.state["embeddings.token_type_embeddings.weight"].shape[0]),
            "hidden_act": "gelu",  # the export computes GELU exactly, with Erf
            "layer_norm_eps": self.layer_norm_eps,
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "pad_token_id": 0,
        }


def read_onnx_bert(onnx_file: Path) -> BertTensors:
    """The ``BertModel`` tensors and hyperparameters held by a BERT ONNX export.

    Raises:
        ModelNotFound: the file cannot be parsed, or is not a BERT export of the expected shape (the message says what
            is missing).
    """
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(onnx_file))
    except Exception as exc:  # onnx raises DecodeError, OSError … depending on the damage
        raise ModelNotFound(f"cannot read the ONNX model {onnx_file}: {exc}", hint="fetch it again: ovp models fetch") from exc
    graph = model.graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    constants = {node.output[0]: numpy_helper.to_array(attr.t)
                 for node in graph.node if node.op_type == "Constant"
                 for attr in node.attribute if attr.name == "value"}
    adds_by_input: dict[str, list[Any]] = {}
    for node in graph.node:
        if node.op_type == "Add":
            for name in node.input:
                adds_by_input.setdefault(name, []).append(node)

    state = {name: value for name, value in tensors.items() if not name.startswith("onnx::")}
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in tensors:
            continue
        biases = [i for add in adds_by_input.get(node.output[0], []) for i in add.input if i.endswith(".bias")]
        if len(biases) != 1:
            raise ModelNotFound(f"{onnx_file}: the weight {node.input[1]} feeds no single bias ({biases})",
                                hint="this is not a BERT export this converter knows")
        state[biases[0].removesuffix(".bias") + ".weight"] = np.ascontiguousarray(tensors[node.input[1]].T)

    # Attention scores are divided by √head_dim (the one scalar divisor that is not √2, GELU's).
    divisors = {float(constants[i]) for node in graph.node if node.op_type == "Div"
                for i in node.input if i in constants and constants[i].size == 1}
    divisors -= {float(np.float32(math.sqrt(2)))}
    # Layer norm adds epsilon to the variance: a tiny scalar.
    epsilons = {float(constants[i]) for node in graph.node if node.op_type == "Add"
                for i in node.input if i in constants and constants[i].size == 1 and 0 < float(constants[i]) < 1e-3}
    if len(divisors) != 1 or len(epsilons) != 1 or "embeddings.word_embeddings.weight" not in state:
        raise ModelNotFound(f"{onnx_file}: cannot read the architecture (score divisors {sorted(divisors)}, "
                            f"epsilons {sorted(epsilons)})", hint="this is not a BERT export this converter knows")
    head_dim = round(divisors.pop() ** 2)
    hidden = int(state["embeddings.word_embeddings.weight"].shape[1])
    if head_dim <= 0 or hidden % head_dim:
        raise ModelNotFound(f"{onnx_file}: head size {head_dim} does not divide the hidden size {hidden}",
                            hint="this is not a BERT export this converter knows")
    return BertTensors(state, hidden // head_dim, epsilons.pop())


def convert(onnx_file: Path, tokenizer_file: Path, out_dir: Path, *, lowercase: bool, max_length: int = 512) -> Path:
    """Write a transformers model directory (``config.json``, ``model.safetensors``, tokenizer files) for a BERT ONNX
    export and its ``tokenizer.json``.

    Args:
        lowercase: whether the tokenizer lowercases text before WordPiece (set it when the vocabulary has no
            upper-case pieces: without it every capitalised word is ``[UNK]``).
        max_length: the tokenizer's ``model_max_length``.

    Raises:
        ModelNotFound: the export is not a BERT this converter knows, or a tensor does not fit ``BertModel`` (every
            tensor must load, strictly).
    """
    import torch
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    bert = read_onnx_bert(onnx_file)
    config = BertConfig(**bert.config())
    model = BertModel(config, add_pooling_layer=False)
    state = {name: torch.from_numpy(np.array(value)) for name, value in bert.state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelNotFound(f"{onnx_file}: its tensors do not fit a BertModel: {str(exc).splitlines()[0]}",
                            hint="this is not a BERT export this converter knows") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)

    spec = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    normalizer = spec.get("normalizer") or {}
    if normalizer.get("type") == "BertNormalizer":
        normalizer["lowercase"] = lowercase
    fixed = out_dir / "source-tokenizer.json"
    fixed.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(fixed), unk_token="[UNK]", cls_token="[CLS]",
                                        sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]",
                                        model_max_length=max_length,
                                        model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    tokenizer.save_pretrained(out_dir)
    fixed.unlink()
    logger.info("converted %s: %d layers, hidden %d, %d heads → %s", onnx_file.name, config.num_hidden_layers,
                config.hidden_size, config.num_attention_heads, out_dir)
    return out_dir


def max_difference(onnx_file: Path, model_dir: Path, texts: Sequence[str]) -> float:
    """The largest absolute difference between the last hidden states of the ONNX graph (onnxruntime, CPU) and of the
    converted model directory, over ``texts`` tokenised by the directory's tokenizer."""
    import onnxruntime
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True, add_pooling_layer=False).eval()
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    batch = tokenizer(list(texts), padding=True, return_tensors="np")
    feed = {name: np.asarray(value, dtype=np.int64) for name, value in batch.items() if name in wanted}
    reference = session.run(["last_hidden_state"], feed)[0]
    with torch.inference_mode():
        ours = model(**{name: torch.from_numpy(value) for name, value in feed.items()}).last_hidden_state.numpy()
    mask = batch["attention_mask"].astype(bool)
    return float(np.abs(reference - ours)[mask].max())
