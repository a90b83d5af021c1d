"""Tiny randomly initialised models built in code and saved like real checkpoints.

They exercise the real loading and inference paths of the transformers, diffusers and open_clip
backends without any download; outputs are noise, so tests assert shapes, ranges and determinism.
"""

from __future__ import annotations

import json
from pathlib import Path

# The CLIP tokenizer and open_clip builders are shared with benchmarks/gpu_check.py.
from benchmarks.tiny_weights import tiny_clip_tokenizer, tiny_open_clip  # noqa: F401

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "a tiny model writes short text about movies, music and hiking",
    "the user likes science fiction films and long walks in the hills",
    '{"title": "hello", "tags": ["a", "b"]} [1, 2, 3]',
]


def tiny_tokenizer(directory: Path):
    """A byte-level BPE tokenizer with ChatML special tokens and a chat template."""
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


def tiny_llama(directory: Path, *, chat_template: bool = True) -> Path:
    """A 2-layer Llama-style causal LM (hidden 32) + tokenizer saved to ``directory``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer(directory)
    if not chat_template:
        config_file = directory / "tokenizer_config.json"
        data = json.loads(config_file.read_text())
        data.pop("chat_template", None)
        config_file.write_text(json.dumps(data))
        (directory / "chat_template.jinja").unlink(missing_ok=True)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def _text_encoder(vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
        hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
        vocab_size=vocab_size, max_position_embeddings=32, projection_dim=16,
    ))


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(8, 8), in_channels=3, out_channels=3,
                         down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                         up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
                         latent_channels=4, norm_num_groups=4, layers_per_block=1)


def tiny_text_to_image(directory: Path) -> Path:
    """A Stable-Diffusion-shaped pipeline with a 2-block UNet, saved with ``save_pretrained``."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(directory / "_tok")
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
        norm_num_groups=4, attention_head_dim=4,
    )
    pipeline = StableDiffusionPipeline(
        unet=unet, scheduler=DDIMScheduler(clip_sample=False, steps_offset=1), vae=_vae(), text_encoder=_text_encoder(len(tokenizer)),
        tokenizer=tokenizer, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(directory)
    return directory


def tiny_text_to_video(directory: Path) -> Path:
    """A ModelScope-shaped text-to-video pipeline (UNet3D), saved with ``save_pretrained``."""
    import torch
    from diffusers import DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(directory / "_tok")
    unet = UNet3DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4,
        out_channels=4, down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"), cross_attention_dim=16,
        attention_head_dim=4, norm_num_groups=4,
    )
    pipeline = TextToVideoSDPipeline(unet=unet, scheduler=DDIMScheduler(clip_sample=False, steps_offset=1), vae=_vae(),
                                     text_encoder=_text_encoder(len(tokenizer)),
                                     tokenizer=tokenizer)
    pipeline.save_pretrained(directory)
    return directory


TINY_CLIP_NAME = "tailormind-tiny-clip"


VLM_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_vlm(directory: Path) -> Path:
    """A Llava-shaped VLM (2-layer CLIP vision tower + 2-layer Llama) with its processor."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer(directory)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32},
                                         crop_size={"height": 32, "width": 32})
    LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                   chat_template=VLM_CHAT_TEMPLATE, patch_size=16,
                   vision_feature_select_strategy="default",
                   num_additional_image_tokens=1).save_pretrained(directory)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, image_size=32, patch_size=16, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(LlavaConfig(
        vision_config=vision, text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1, vision_feature_select_strategy="default",
    )).save_pretrained(directory)
    return directory
