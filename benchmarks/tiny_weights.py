"""Tiny randomly initialised models, built in code and saved like real checkpoints (no download).

Used by ``benchmarks/gpu_check.py`` to run every model backend on a machine without a network.
Each builder writes to the directory it is given and returns what a TailorMind config block
needs (a path, or a name plus files). Outputs of these models are noise: they exercise loading,
devices and inference, not quality. Adapted from ``tests/tiny_models.py`` (benchmarks do not
import from tests/), plus a sentence-transformers BERT and an SDXL-shaped pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "a tiny model writes short text about movies, music and hiking",
    "the user likes science fiction films and long walks in the hills",
    '{"title": "hello", "tags": ["a", "b"]} [1, 2, 3]',
]
TINY_CLIP_NAME = "tailormind-gpu-check-clip"


# --- text: a 2-layer Llama with a byte-level BPE tokenizer and a ChatML template -------------

def tiny_tokenizer(directory: Path) -> Any:
    """A byte-level BPE tokenizer (vocabulary 400) with ChatML special tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|im_start|>",
                                   eos_token="<|im_end|>", pad_token="<|im_end|>")
    fast.chat_template = CHATML
    fast.save_pretrained(directory)
    return fast


def tiny_llama(directory: Path) -> Path:
    """A 2-layer Llama-style causal LM (hidden 32) + tokenizer saved to ``directory``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer(directory)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


# --- embed: a 2-layer BERT wrapped as a sentence-transformers model (mean pooling) ------------

def tiny_sentence_bert(directory: Path) -> Path:
    """A sentence-transformers model directory: a 2-layer BERT (hidden 32), a word-level
    WordPiece vocabulary from :data:`CORPUS`, mean pooling."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    bert_dir = directory.with_name(directory.name + "-bert")
    bert_dir.mkdir(parents=True, exist_ok=True)
    words = sorted({w.strip('{}[]",:.') for line in CORPUS for w in line.lower().split()} - {""})
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters),
             *(w for w in words if w not in letters)]
    (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(bert_dir / "vocab.txt"), model_max_length=128)
    tokenizer.save_pretrained(bert_dir)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=128)).save_pretrained(bert_dir)
    # A plain transformers directory loads as Transformer + mean Pooling; saving it writes the
    # sentence-transformers layout (modules.json, pooling config) a real model directory has.
    SentenceTransformer(str(bert_dir), device="cpu", local_files_only=True).save(str(directory))
    return directory


# --- clip: a 2-layer open_clip model ---------------------------------------------------------

def tiny_open_clip(directory: Path) -> tuple[str, Path, Path]:
    """``(model name, weights file, model-config file)`` of a 2-layer CLIP for open_clip."""
    import open_clip
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    config = {"embed_dim": 32,
              "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16,
                             "head_width": 32},
              "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                           "layers": 2}}
    config_file = directory / f"{TINY_CLIP_NAME}.json"
    config_file.write_text(json.dumps(config))
    open_clip.add_model_config(str(config_file))
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None)
    weights = directory / "tiny_clip.pt"
    torch.save(model.state_dict(), weights)
    return TINY_CLIP_NAME, weights, config_file


# --- image and video: diffusers pipelines with 2-block UNets ---------------------------------

def tiny_clip_tokenizer(directory: Path) -> Any:
    """A CLIP BPE tokenizer over single bytes (no merges): enough for a diffusers text encoder."""
    from transformers import CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for symbol in symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]:
        vocab.setdefault(symbol, len(vocab))
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"),
                         model_max_length=32)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-character table (what CLIP's BPE runs on)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def _text_encoder_config(vocab_size: int) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
        hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
        vocab_size=vocab_size, max_position_embeddings=32, projection_dim=16,
    )


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(8, 8), in_channels=3, out_channels=3,
                         down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                         up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
                         latent_channels=4, norm_num_groups=4, layers_per_block=1)


def _scheduler() -> Any:
    from diffusers import DDIMScheduler

    return DDIMScheduler(clip_sample=False, steps_offset=1)


def tiny_text_to_image(directory: Path) -> Path:
    """A Stable-Diffusion-shaped pipeline (one CLIP text encoder, a 2-block UNet)."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(directory / "_tok")
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
        norm_num_groups=4, attention_head_dim=4,
    )
    pipeline = StableDiffusionPipeline(
        unet=unet, scheduler=_scheduler(), vae=_vae(),
        text_encoder=CLIPTextModel(_text_encoder_config(len(tokenizer))), tokenizer=tokenizer,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipeline.save_pretrained(directory)
    return directory


def tiny_text_to_image_xl(directory: Path) -> Path:
    """An SDXL-shaped pipeline: two text encoders (``CLIPTextModel`` and
    ``CLIPTextModelWithProjection``, hidden 16 each, so cross-attention sees 32) and a UNet
    conditioned on the pooled text embedding plus 6 size/crop numbers (``text_time``)."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(directory / "_tok")
    encoder_config = _text_encoder_config(len(tokenizer))
    time_dim = 8
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), norm_num_groups=4,
        attention_head_dim=4, use_linear_projection=True,
        cross_attention_dim=2 * encoder_config.hidden_size,
        addition_embed_type="text_time", addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=6 * time_dim + encoder_config.projection_dim,
    )
    pipeline = StableDiffusionXLPipeline(
        unet=unet, scheduler=_scheduler(), vae=_vae(),
        text_encoder=CLIPTextModel(encoder_config), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(encoder_config), tokenizer_2=tokenizer,
    )
    pipeline.save_pretrained(directory)
    return directory


def tiny_text_to_video(directory: Path) -> Path:
    """A ModelScope-shaped text-to-video pipeline (a 2-block UNet3D)."""
    import torch
    from diffusers import TextToVideoSDPipeline, UNet3DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(directory / "_tok")
    unet = UNet3DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4,
        out_channels=4, down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"), cross_attention_dim=16,
        attention_head_dim=4, norm_num_groups=4,
    )
    pipeline = TextToVideoSDPipeline(
        unet=unet, scheduler=_scheduler(), vae=_vae(),
        text_encoder=CLIPTextModel(_text_encoder_config(len(tokenizer))), tokenizer=tokenizer,
    )
    pipeline.save_pretrained(directory)
    return directory
