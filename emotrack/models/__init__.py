"""Models and losses: the registry (`emotrack.models.registry`), one file per paper, weight inflation
(`inflate`), pretrained weights (`weights`) and the papers' losses (`losses`)."""

from emotrack.models.registry import (ModelInfo, adapt_options, build_model, count_parameters, describe_model,
                                      list_models, load_model, model_info, register, video_options)

__all__ = ["ModelInfo", "adapt_options", "build_model", "count_parameters", "describe_model", "list_models",
           "load_model", "model_info", "register", "video_options"]
