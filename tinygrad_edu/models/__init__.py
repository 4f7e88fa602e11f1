"""Models built from the library's layers (chapter 11).

``char_transformer.py`` is the character-level GPT (``GPT``, ``GPTConfig``); ``char_rnn.py`` an
LSTM language model with the same interface (``CharLSTM``, ``CharLSTMConfig``). Both train with
``tinygrad_edu.train.train`` and are saved in the same checkpoints, which name the model's class
and configuration so that :func:`build_model` can rebuild it.
"""

from .char_rnn import CharLSTM, CharLSTMConfig
from .char_transformer import GPT, GPTClassifier, GPTConfig

# class name -> (model class, config dataclass): how a checkpoint's "model_type" is rebuilt
MODELS = {"GPT": (GPT, GPTConfig), "CharLSTM": (CharLSTM, CharLSTMConfig)}


def build_model(model_type: str, config: dict):
    """A fresh model of class ``model_type`` with the configuration ``config`` (a dict)."""
    if model_type not in MODELS:
        raise ValueError(f"unknown model type {model_type!r}; expected one of {sorted(MODELS)}")
    model_cls, config_cls = MODELS[model_type]
    return model_cls(config_cls(**config))


__all__ = [
    "GPT",
    "GPTClassifier",
    "GPTConfig",
    "CharLSTM",
    "CharLSTMConfig",
    "MODELS",
    "build_model",
]
