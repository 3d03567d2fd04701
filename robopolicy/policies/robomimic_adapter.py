"""Robomimic's BC and BC-RNN as robopolicy policies: robomimic's own algorithm classes, our contract.

A policy here holds a robomimic algorithm (``robomimic.algo.bc.BC``, ``BC_GMM``, ``BC_RNN`` or
``BC_RNN_GMM``) built by ``algo_factory`` from ``config_factory("bc")`` plus our settings, and
exposes its networks (``algo.nets``) as the submodule ``nets``: ``save_policy``/``load_policy``
store them in model.safetensors with the normalizer, like any policy. Robomimic owns the update
(its optimizer, its losses), so these policies train through
``robopolicy.training.robomimic_trainer.train_robomimic`` (``trains_with_robomimic`` tells
``robopolicy train`` to call it), on our store exported to robomimic's HDF5 and read by
robomimic's ``SequenceDataset``.

Units: low-dim observations and actions go through our LinearNormalizer to [-1, 1] on the way
in (robomimic's networks squash actions with tanh, so they need that range) and actions are
unnormalized on the way out: ``predict_action`` returns data units. Each call returns one
action (Ta = 1), as robomimic's rollouts do. GMM heads act as robomimic evaluates them (low-noise:
the mean of one mixture component, drawn by its weight); the draw comes from the caller's
``noise`` or ``generator``, so an episode's actions do not depend on its batch.

BC-RNN keeps an LSTM/GRU hidden state per episode across calls and restarts it every
``rnn_horizon`` steps, as robomimic's ``BC_RNN.get_action`` does; ``reset()`` drops all of
them. It is ``stateful``: the rollout pool, which restarts envs at different times, passes
``episodes`` (one id per row) so each row continues its own episode's state; without ids the
row index is the episode (a fixed set of envs).

Only low_dim observation keys are supported.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from robopolicy.errors import RobopolicyError
from robopolicy.policies import register_policy
from robopolicy.policies.base import Policy


@contextlib.contextmanager
def quiet_robomimic():
    """Silence robomimic's prints (its macro warning on import, obs-spec and dataset banners)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def robomimic_config(
    obs_keys: Sequence[str],
    actor_layer_dims: Sequence[int],
    lr: float,
    gmm: bool,
    gmm_modes: int,
    rnn: Mapping[str, Any] | None = None,
):
    """Robomimic's BC config (``config_factory("bc")``) with our observation keys and settings.

    ``rnn``: None for BC; for BC-RNN ``{"horizon", "hidden_dim", "num_layers", "rnn_type"}``,
    where horizon is both ``train.seq_length`` and ``algo.rnn.horizon`` (equal in all of
    robomimic's configs).
    """
    with quiet_robomimic():
        from robomimic.config import config_factory

    config = config_factory("bc")
    with config.unlocked():
        config.observation.modalities.obs.low_dim = list(obs_keys)
        config.observation.modalities.obs.rgb = []
        config.algo.actor_layer_dims = list(actor_layer_dims)
        config.algo.optim_params.policy.learning_rate.initial = float(lr)
        config.algo.gmm.enabled = bool(gmm)
        config.algo.gmm.num_modes = int(gmm_modes)
        config.algo.rnn.enabled = rnn is not None
        config.train.frame_stack = 1
        config.train.seq_length = 1
        if rnn is not None:
            config.algo.rnn.horizon = int(rnn["horizon"])
            config.algo.rnn.hidden_dim = int(rnn["hidden_dim"])
            config.algo.rnn.num_layers = int(rnn["num_layers"])
            config.algo.rnn.rnn_type = str(rnn["rnn_type"])
            config.train.seq_length = int(rnn["horizon"])
    return config


def _low_noise_action(dist: Any, u: torch.Tensor) -> torch.Tensor:
    """Robomimic's low-noise GMM evaluation: the mean of the component drawn with uniform ``u``.

    ``dist``: a MixtureSameFamily with batch shape S and event (Da,); ``u``: uniforms of shape S.
    """
    probs = dist.mixture_distribution.probs  # (*S, K)
    means = dist.component_distribution.base_dist.loc  # (*S, K, Da)
    k = (probs.cumsum(-1) < u.unsqueeze(-1)).sum(-1).clamp_max(probs.shape[-1] - 1)
    index = k[..., None, None].expand(*k.shape, 1, means.shape[-1])
    return means.gather(-2, index).squeeze(-2)


class RobomimicPolicy(Policy):
    """A robomimic BC-family algorithm behind the Policy contract (see the module docstring).

    Subclasses set ``n_obs_steps`` and whether an RNN is used; the settings are robomimic's
    ``algo`` config keys under our names.
    """

    #: `robopolicy train` trains this policy with train_robomimic (robomimic's own update).
    trains_with_robomimic: ClassVar[bool] = True

    def __init__(
        self,
        shape_meta: Mapping,
        n_obs_steps: int,
        actor_layer_dims: Sequence[int],
        lr: float,
        gmm: bool,
        gmm_modes: int,
        rnn: Mapping[str, Any] | None,
        name: str | None = None,
    ) -> None:
        super().__init__(shape_meta, horizon=n_obs_steps, n_obs_steps=n_obs_steps,
                         n_action_steps=1, name=name)
        other = [k for k in self.shape_meta["obs"] if k not in self.low_dim_keys]
        if other:
            raise RobopolicyError(
                f"policy '{type(self).name}' (robomimic adapter) supports low_dim observations only; "
                f"shape_meta has {', '.join(other)}"
            )
        self.gmm = bool(gmm)
        self.robomimic_config = robomimic_config(self.low_dim_keys, actor_layer_dims, lr, gmm,
                                                 gmm_modes, rnn)
        self.init_obs_utils()
        with quiet_robomimic():
            from robomimic.algo import algo_factory

            self.algo = algo_factory(
                "bc", self.robomimic_config,
                obs_key_shapes=OrderedDict(
                    (k, list(self.shape_meta["obs"][k]["shape"])) for k in self.low_dim_keys),
                ac_dim=self.action_dim, device="cpu",
            )
        self.nets = self.algo.nets  # robomimic's networks, saved with our state dict
        self._aliases = self._shared_tensor_aliases()
        self.register_state_dict_post_hook(_drop_aliases)
        self.register_load_state_dict_pre_hook(_restore_aliases)

    # ------------------------------------------------------------------ robomimic plumbing
    def init_obs_utils(self) -> None:
        """Point robomimic's global observation registry at this policy's keys (it has one per
        process; building networks and datasets reads it)."""
        with quiet_robomimic():
            import robomimic.algo  # noqa: F401  (registers the encoder classes the registry checks)
            import robomimic.utils.obs_utils as ObsUtils

            ObsUtils.initialize_obs_utils_with_config(self.robomimic_config)

    def _shared_tensor_aliases(self) -> dict[str, str]:
        """State-dict keys that name a tensor already listed under an earlier key -> that key.

        Robomimic's RNN networks register one module twice (``decoder`` and
        ``rnn.per_step_net``); safetensors refuses shared tensors, so only one name is stored.
        """
        first: dict[int, str] = {}
        aliases = {}
        for key, tensor in super().state_dict(keep_vars=True).items():
            if id(tensor) in first:
                aliases[key] = first[id(tensor)]
            else:
                first[id(tensor)] = key
        return aliases

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        if hasattr(self, "algo"):  # robomimic moves its batches to algo.device
            self.algo.device = self.device
            self.reset()
        return out

    def _normalize_obs(self, obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: self.normalizer.normalize(k, obs[k].float()) for k in self.low_dim_keys}

    def train_on_batch(self, batch: dict, epoch: int, validate: bool = False) -> dict:
        """One robomimic update on a batch of robomimic's SequenceDataset (data units).

        Robomimic's own steps: ``process_batch_for_training`` (select, to device, float), our
        normalizer on observations and actions, ``postprocess_batch_for_training`` and
        ``train_on_batch`` (forward, loss, backward, its optimizer step unless ``validate``).
        Returns robomimic's info dict (``info["losses"]["action_loss"]``).
        """
        b = self.algo.process_batch_for_training(batch)
        b["obs"] = {**b["obs"], **self._normalize_obs(b["obs"])}
        b["actions"] = self.normalizer.normalize("action", b["actions"])
        b = self.algo.postprocess_batch_for_training(b, obs_normalization_stats=None)
        return self.algo.train_on_batch(b, epoch, validate=validate)

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Robomimic's action loss on ``{"obs": {key: (B, T, ...)}, "action": (B, T, Da)}``
        (data units; BC-RNN needs the same T for both). Computed without gradient: these
        policies are trained by robomimic's own update (``train_robomimic``), not by a loop
        that back-propagates this loss."""
        info = self.train_on_batch({"obs": dict(batch["obs"]), "actions": batch["action"]},
                                   epoch=0, validate=True)
        return {"loss": info["losses"]["action_loss"]}

    @staticmethod
    def _uniforms(batch: int, noise: torch.Tensor | None, generator: torch.Generator | None,
                  device: torch.device) -> torch.Tensor:
        """(B,) uniforms for the GMM component draw: from the caller's noise (standard normal,
        through its CDF), else its generator, else torch's global RNG."""
        if noise is not None:
            z = noise.reshape(batch, -1)[:, 0].to(device, torch.float32)
            return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
        return torch.rand(batch, generator=generator).to(device)


def _drop_aliases(module: RobomimicPolicy, state_dict: dict, prefix: str, local_metadata) -> None:
    for alias in module._aliases:
        state_dict.pop(prefix + alias, None)


def _restore_aliases(module: RobomimicPolicy, state_dict: dict, prefix: str, *args) -> None:
    for alias, key in module._aliases.items():
        if prefix + key in state_dict and prefix + alias not in state_dict:
            state_dict[prefix + alias] = state_dict[prefix + key]


@register_policy()
class BCPolicy(RobomimicPolicy):
    """Robomimic's BC (an MLP on the current observation; BC_GMM with ``gmm``).

    Args:
        shape_meta: dataset shape metadata (low_dim keys only).
        actor_layer_dims: MLP hidden sizes (robomimic: algo.actor_layer_dims).
        lr: Adam learning rate of robomimic's optimizer.
        gmm: a Gaussian-mixture action head trained by likelihood (robomimic's choice for
            human demos) instead of an L2 regression head.
        gmm_modes: mixture components.
        name: the registry name (``bc``), accepted from the config.
    """

    def __init__(self, shape_meta: Mapping, actor_layer_dims: Sequence[int] = (1024, 1024),
                 lr: float = 1e-4, gmm: bool = True, gmm_modes: int = 5,
                 name: str | None = None) -> None:
        super().__init__(shape_meta, 1, actor_layer_dims, lr, gmm, gmm_modes, None, name)

    @torch.no_grad()
    def predict_action(self, obs, text=None, *, noise=None, generator=None) -> torch.Tensor:
        """obs {key: (B, >=1, *shape)} (the last frame is used) -> actions (B, 1, Da), data units."""
        batch = self.check_obs(obs)
        x = self._normalize_obs({k: obs[k][:, -1] for k in self.low_dim_keys})
        net = self.nets["policy"]
        if self.gmm:
            u = self._uniforms(batch, noise, generator, self.device)
            action = _low_noise_action(net.forward_train(obs_dict=x), u)
        else:
            action = net(obs_dict=x)
        return self.normalizer.unnormalize("action", action).unsqueeze(1)


@register_policy()
class BCRNNPolicy(RobomimicPolicy):
    """Robomimic's BC-RNN (an LSTM/GRU over the observation sequence; BC_RNN_GMM with ``gmm``).

    Trained on sequences of ``rnn_horizon`` steps from a zero hidden state; at rollout the
    hidden state is carried per env and restarted every ``rnn_horizon`` steps (robomimic's
    rollout). See the module docstring for how envs are told apart in a batch.

    Args:
        shape_meta: dataset shape metadata (low_dim keys only).
        rnn_horizon: training sequence length and hidden-state restart period (robomimic:
            train.seq_length and algo.rnn.horizon).
        rnn_hidden_dim, rnn_num_layers, rnn_type: the recurrent core (LSTM or GRU).
        actor_layer_dims: MLP layers between the RNN and the action head (robomimic: none).
        lr: Adam learning rate of robomimic's optimizer.
        gmm, gmm_modes: a Gaussian-mixture action head and its components.
        name: the registry name (``bc_rnn``), accepted from the config.
    """

    def __init__(self, shape_meta: Mapping, rnn_horizon: int = 10, rnn_hidden_dim: int = 400,
                 rnn_num_layers: int = 2, rnn_type: str = "LSTM",
                 actor_layer_dims: Sequence[int] = (), lr: float = 1e-4, gmm: bool = True,
                 gmm_modes: int = 5, name: str | None = None) -> None:
        if rnn_type not in ("LSTM", "GRU"):
            raise RobopolicyError(f"bc_rnn: rnn_type must be LSTM or GRU, got '{rnn_type}'")
        if rnn_horizon < 1:
            raise RobopolicyError(f"bc_rnn: rnn_horizon must be >= 1, got {rnn_horizon}")
        rnn = {"horizon": rnn_horizon, "hidden_dim": rnn_hidden_dim,
               "num_layers": rnn_num_layers, "rnn_type": rnn_type}
        super().__init__(shape_meta, 2, actor_layer_dims, lr, gmm, gmm_modes, rnn, name)
        self.rnn_horizon = int(rnn_horizon)
        # episode id -> (hidden state per layer, each (layers, H), steps taken) after the last call
        self._memory: dict[int, tuple[tuple[torch.Tensor, ...], int]] = {}

    stateful: ClassVar[bool] = True

    def reset(self) -> None:
        """Forget every episode's hidden state (the next call starts all rows from zero)."""
        self._memory = {}

    @property
    def memory(self) -> dict:
        """Episode id -> what the policy carries of it into its next call (a copy). A call keeps
        only the episodes it was given: one missing from it has ended."""
        return dict(self._memory)

    @memory.setter
    def memory(self, memory: dict) -> None:
        self._memory = dict(memory)

    def forget(self, episode: int) -> None:
        """Drop the hidden state of `episode` (before it is run again from its start)."""
        self._memory.pop(episode, None)

    def _carried(self, episodes: Sequence[int], device: torch.device):
        """Hidden state (layers, B, H) per state tensor and step count (B,) of each row: its
        episode's from the last call, or zero for an episode not seen before."""
        zero = self.nets["policy"].get_rnn_init_state(batch_size=1, device=device)
        zero = zero if isinstance(zero, tuple) else (zero,)
        rows = [self._memory.get(int(e), (tuple(z[:, 0] for z in zero), 0)) for e in episodes]
        state = tuple(torch.stack([r[0][i] for r in rows], dim=1) for i in range(len(zero)))
        count = torch.tensor([r[1] for r in rows], dtype=torch.long, device=device)
        return state, count

    @torch.no_grad()
    def predict_action(self, obs, text=None, *, noise=None, generator=None,
                       episodes: Sequence[int] | None = None) -> torch.Tensor:
        """obs {key: (B, >=1, *shape)} (the last frame is one RNN step) -> actions (B, 1, Da) in
        data units. ``episodes``: each row's episode id (default: the row index). With Ta = 1 a
        live episode is in every call, so an episode missing from a call has ended and its
        state is dropped."""
        batch = self.check_obs(obs)
        keys = self.low_dim_keys
        episodes = list(range(batch)) if episodes is None else [int(e) for e in episodes]
        if len(episodes) != batch or len(set(episodes)) != batch:
            raise RobopolicyError(f"bc_rnn: episodes must be {batch} distinct ids, got {episodes}")
        cur = obs[keys[0]]
        state, count = self._carried(episodes, cur.device)
        # robomimic's rollout restarts the hidden state (from zeros) every rnn_horizon steps
        restart = (count % self.rnn_horizon == 0)[None, :, None]
        state = tuple(torch.where(restart, torch.zeros_like(h), h) for h in state)
        if len(state) == 1:  # a GRU's state is one tensor, an LSTM's a (h, c) pair
            state = state[0]

        x = {k: v[:, None] for k, v in self._normalize_obs({k: obs[k][:, -1] for k in keys}).items()}
        net = self.nets["policy"]
        if self.gmm:
            dist, state = net.forward_train(obs_dict=x, rnn_init_state=state, return_state=True)
            u = self._uniforms(batch, noise, generator, cur.device)
            action = _low_noise_action(dist, u[:, None])[:, 0]
        else:
            action, state = net(obs_dict=x, rnn_init_state=state, return_state=True)
            action = action[:, 0]
        state = state if isinstance(state, tuple) else (state,)
        self._memory = {e: (tuple(h[:, i] for h in state), int(count[i]) + 1)
                         for i, e in enumerate(episodes)}
        return self.normalizer.unnormalize("action", action).unsqueeze(1)
