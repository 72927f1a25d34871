"""The estimator face shared by every pathways model, and the checkpoint state protocol.

Statisticians get scikit-learn conventions (``fit`` returns self, learned attributes end in ``_``, ``get_params``);
ML users get the torch ``nn.Module`` kept in ``module_``. ``export_state``/``import_state`` turn any fitted estimator
into plain JSON + tensors (no pickled code), which :mod:`pathways.checkpoint` writes to disk.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import json
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator

from pathways.checkpoint import import_class
from pathways.device import resolve_device
from pathways.data.eventlog import EventLog
from pathways.data.vocabulary import Vocabulary
from pathways.encode.sequences import Sequences, to_sequences
from pathways.errors import PathwaysInputError
from pathways.models.params import check_param_types
from pathways.progress import progress_enabled, use_progress
from pathways.training.state import MODEL_IDENTITY_FILE, check_resume, run_identity
from pathways.training.trainer import HPARAMS, Trainer

_JSON_SCALARS = (bool, int, float, str, type(None))
#: parameters of earlier versions, dropped when an old checkpoint is loaded (run-level trainer settings now reach
#: the model through ``fit(..., trainer=)``; they never changed what a fitted model computes)
_RETIRED_PARAMS = ("trainer_kwargs",)


class NotFittedError(PathwaysInputError):
    """The estimator is used before ``fit``."""


class PathwaysEstimator(BaseEstimator):
    """Base class of all pathways models: the one protocol every family implements.

    ``input_kind`` (class attribute)
        ``"sequences"`` (Hawkes, neural TPPs), ``"outcome"`` (recurrent outcome models) or ``"sccs"``: which
        encoder feeds the model (the pipelines check it).
    ``fit(data, validation=None, trainer=None) -> self``
        The first argument is called ``data`` in every family; full-batch learners accept ``validation`` and
        document that they ignore it. ``trainer`` (a :class:`pathways.training.Trainer`) is the ONE route of the
        run-level settings: neural models train with ``trainer.configured(<their hyper-parameters>)``
        (:meth:`run_trainer`), full-batch learners take its device, progress and iteration cap
        (:func:`full_batch_fit`). ``None`` keeps the estimator's own parameters (library use).
    ``score(data) -> float``
        Mean log-likelihood per event (per sample for outcome models, per case-event for SCCS); higher is better.
    ``score_samples(data) -> ndarray``
        Log-likelihood per sequence / patient / case (float64, one value each).
    ``log_likelihood(data) -> float``
        Total log-likelihood, ``score_samples(data).sum()`` (defined here, once).
    ``to_factors(data=None) -> DataFrame``
        The factors table (:func:`pathways.data.tables.factors_frame`).
    ``check_fitted() -> None``
        The one fitted check: raises :class:`NotFittedError` (a ``PathwaysInputError``) before ``fit``.

    Learned attributes end in ``_``. Neural models keep their network in ``module_`` and implement
    ``_build_module()`` that rebuilds it (untrained) from learned metadata, so a checkpoint can restore it.
    """

    input_kind: ClassVar[str] = "sequences"

    # -- protocol -------------------------------------------------------------------------------------------------
    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless ``fit`` has run (some learned attribute ``*_`` exists).

        Families whose fitted state is one attribute (e.g. ``module_``) override this with that test.
        """
        fitted = [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]
        if not fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit first")

    def log_likelihood(self, data: Any) -> float:
        """Total log-likelihood of ``data``: the sum of :meth:`score_samples` (one meaning for every family)."""
        return float(np.sum(self.score_samples(data)))

    def validate_params(self) -> None:
        """Check every parameter before any work: the generic type check of :func:`check_param_types` (naming the
        parameter), then the family's own ``_check_params`` (ranges, choices) when it has one."""
        check_param_types(self)
        own = getattr(self, "_check_params", None)
        if callable(own):
            own()

    def check_resume(self, trainer: Trainer, *parts: Any) -> None:
        """Record (or, resuming, compare) this estimator's parameters and data in the trainer's checkpoint folder.

        A fit resumed with ``Trainer(resume=True)`` from a state saved with other parameters (``lr``, ``seed``) or
        other data is refused, listing the differences (:func:`pathways.training.state.check_resume`); ``device``
        and ``progress`` may change. No-op without ``checkpoint_dir``.
        """
        if trainer.checkpoint_dir is None:
            return
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in ("device", "progress")}
        identity = run_identity({"estimator": type(self).__name__, **params}, parts)
        check_resume(trainer.checkpoint_dir, identity, bool(trainer.resume), MODEL_IDENTITY_FILE)

    def run_trainer(self, trainer: Trainer | None) -> Trainer:
        """The Trainer a neural model fits with: the run's ``trainer`` configured with this estimator's
        optimisation hyper-parameters (max_epochs, lr, weight_decay, batch_size, patience, seed), or, without a run
        trainer, a default one on this estimator's ``device`` and ``progress``."""
        params = self.get_params(deep=False)
        if trainer is None:
            trainer = Trainer(device=params.get("device", "auto"), progress=bool(params.get("progress", False)))
        return trainer.configured(**{k: v for k, v in params.items() if k in HPARAMS})

    @contextlib.contextmanager
    def run_settings(self, trainer: Trainer) -> Iterator[None]:
        """Within the block, a full-batch learner uses the run trainer's ``device`` and ``progress`` and its
        ``max_iter`` capped by ``trainer.iterations`` (for the parameters it has); parameters are restored after."""
        params = self.get_params(deep=False)
        updates: dict[str, Any] = {}
        if "device" in params:
            updates["device"] = str(resolve_device(trainer.device))
        if "progress" in params:
            updates["progress"] = progress_enabled(trainer.progress)
        if "max_iter" in params:
            updates["max_iter"] = trainer.iterations(params["max_iter"])
        self.set_params(**updates)
        try:
            with use_progress(trainer.progress):  # the solver loops' bars follow trainer.progress
                yield
        finally:
            self.set_params(**{k: params[k] for k in updates})

    def _learned_attributes(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    # -- checkpoint protocol --------------------------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        """Return {"class", "params", "meta", "arrays"}: JSON-able data plus named tensors.

        numpy/torch learned attributes go to ``arrays``; JSON-able ones (numbers, strings, lists, dicts),
        Vocabulary and DataFrame attributes go to ``meta``; ``module_`` contributes its ``state_dict`` as
        ``module_.<key>`` arrays. Anything else is an error (it could not be restored without pickling).
        """
        self.check_fitted()
        meta: dict[str, Any] = {}
        arrays: dict[str, torch.Tensor] = {}
        for name, value in self._learned_attributes().items():
            if name == "module_":
                for key, tensor in value.state_dict().items():
                    arrays[f"module_.{key}"] = tensor.detach().cpu()
            elif isinstance(value, torch.Tensor):
                arrays[name] = value.detach().cpu()
            elif isinstance(value, np.ndarray) and value.dtype != object:
                arrays[name] = torch.from_numpy(np.ascontiguousarray(value))
            elif isinstance(value, Vocabulary):
                meta[name] = {"__vocabulary__": value.to_dict()}
            elif isinstance(value, pd.DataFrame):
                meta[name] = {"__dataframe__": json.loads(value.to_json(orient="split"))}
            elif isinstance(value, np.ndarray):
                meta[name] = {"__object_array__": value.tolist()}
            elif _is_json(value):
                meta[name] = value
            elif isinstance(value, (np.generic,)):
                meta[name] = value.item()
            else:
                raise PathwaysInputError(
                    f"{type(self).__name__}.{name}: cannot export a {type(value).__name__} without pickling"
                )
        params = self.get_params(deep=False)
        bad = [k for k, v in params.items() if not _is_json(v)]
        if bad:
            raise PathwaysInputError(f"{type(self).__name__}: parameters {bad} are not JSON-serialisable")
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}", "params": params, "meta": meta,
                "arrays": arrays}

    @classmethod
    def import_state(cls, state: dict[str, Any], device: str | torch.device = "cpu") -> "PathwaysEstimator":
        """Rebuild a fitted estimator from :meth:`export_state`'s output (class resolved from ``state["class"]``)."""
        for key in ("class", "params", "meta", "arrays"):
            if key not in state:
                raise PathwaysInputError(f"estimator state lacks '{key}'")
        klass = import_class(state["class"])  # the allow-list of pathways.checkpoint
        if not issubclass(klass, PathwaysEstimator):
            raise PathwaysInputError(f"{state['class']} is not a pathways estimator")
        est = klass(**{k: v for k, v in state["params"].items() if k not in _RETIRED_PARAMS})
        for name, value in state["meta"].items():
            setattr(est, name, _decode_meta(value))
        module_state = {}
        for name, tensor in state["arrays"].items():
            if name.startswith("module_."):
                module_state[name[len("module_."):]] = tensor
            else:
                setattr(est, name, _restore_array(est, name, tensor))
        if module_state:
            module = est._build_module()
            module.load_state_dict(module_state)
            est.module_ = module.to(device).eval()
        return est

    def _build_module(self) -> torch.nn.Module:
        raise PathwaysInputError(f"{type(self).__name__} holds a module_ but does not define _build_module()")


def full_batch_fit(fit: Callable[..., Any]) -> Callable[..., Any]:
    """Give a full-batch learner's ``fit(self, data, ...)`` the protocol's keyword ``trainer=``.

    Under a run's Trainer the fit runs inside :meth:`PathwaysEstimator.run_settings` (device, progress, iteration
    cap); without one it is the plain fit.
    """
    @functools.wraps(fit)
    def wrapper(self: PathwaysEstimator, data: Any, *args: Any, trainer: Trainer | None = None,
                **kwargs: Any) -> Any:
        check_param_types(self)  # before any work, naming the parameter (``decay="abc"``, ``n_lags=2.5``)
        if trainer is None:
            return fit(self, data, *args, **kwargs)
        with self.run_settings(trainer):
            return fit(self, data, *args, **kwargs)

    sig = inspect.signature(fit)
    extra = inspect.Parameter("trainer", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="Trainer | None")
    params = list(sig.parameters.values())
    at = next((i for i, p in enumerate(params) if p.kind == inspect.Parameter.VAR_KEYWORD), len(params))
    wrapper.__signature__ = sig.replace(parameters=params[:at] + [extra] + params[at:])  # type: ignore[attr-defined]
    return wrapper


def as_sequences(data: EventLog | Sequences | list, vocab: Vocabulary | None = None) -> Sequences:
    """Coerce an EventLog, Sequences or tick-format list into Sequences.

    With ``vocab`` (a fitted model's), an EventLog is re-encoded so that indices keep their fitted meaning; codes
    unknown to the model raise an error naming them.
    """
    if isinstance(data, Sequences):
        if vocab is not None and data.vocab is not None and data.vocab != vocab:
            raise PathwaysInputError("data: sequences were encoded with another vocabulary than the model's")
        if vocab is not None and data.n_codes != len(vocab):
            raise PathwaysInputError(f"data: {data.n_codes} codes but the model knows {len(vocab)}")
        return data
    if isinstance(data, EventLog):
        if vocab is not None and data.vocab != vocab:
            data = data.with_vocab(vocab, unknown="error")
        return to_sequences(data)
    if isinstance(data, (list, tuple)):
        return Sequences.from_tick(data, vocab=vocab)
    raise PathwaysInputError(f"data: expected an EventLog, Sequences or tick-format list, got {type(data).__name__}")


def _is_json(value: Any) -> bool:
    if isinstance(value, _JSON_SCALARS):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def _decode_meta(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "__vocabulary__":
            return Vocabulary.from_dict(inner)
        if key == "__dataframe__":
            return pd.DataFrame(inner["data"], index=inner["index"], columns=inner["columns"])
        if key == "__object_array__":
            return np.asarray(inner, dtype=object)
    return value


def _restore_array(est: PathwaysEstimator, name: str, tensor: torch.Tensor) -> Any:
    """numpy for attributes that were numpy (the default), tensors where the estimator says so."""
    keep_tensor = getattr(est, "_tensor_attributes", ())
    return tensor if name in keep_tensor else tensor.numpy()
