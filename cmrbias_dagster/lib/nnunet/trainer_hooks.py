"""What the pipeline changes on a constructed nnUNetTrainer, each switched by a training setting.

- bf16 steps: nnU-Net autocasts only on CUDA and trains in fp32 elsewhere. On a CPU with native
  bf16 (AVX512-BF16 or AMX), the network's forward pass in bfloat16 with channels-last tensors
  makes the quick network's step about 1.5x faster (BENCHMARKS.md, "CPU training levers").
  Weights, gradients, the loss and the SGD update stay fp32: only the network's forward (and so
  its backward) runs in bf16, and its outputs are cast back before the loss.
- One thread-pool scan: for every batch, nnU-Net's loader builds a new threadpoolctl controller to
  hold BLAS at one thread, which scans the loaded libraries again: about 6 ms of a quick batch of
  28 ms. The cases drawn, the crops and the augmentation are nnU-Net's own.
- AdamW (`optimizer: adamw`): nnU-Net's own nnUNetTrainerAdam optimizer, without looking a trainer
  class up by name, in torch's fused implementation: the same update in one kernel instead of ~10
  small ops per parameter tensor (the quick network has 68), about 3 ms of a ~50 ms CPU step.
- Epoch reports: when a listener is given, each finished epoch's numbers go to it (an EpochReport).
- Random streams carried by checkpoints: every generator the training draws from is saved in each
  checkpoint and restored on resume, so a resumed fold continues the streams it stopped in.
- Seeded augmentation workers: nnU-Net starts its NonDetMultiThreadedAugmenter with `seeds=None`,
  so each worker reseeds from the OS; with a seed each worker gets one drawn from it.
Use inside a fresh training process (lib.nnunet.isolation), which imports torch.
"""

import random
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from cmrbias_dagster.lib.nnunet.epoch_reports import EpochListener, epoch_report

if TYPE_CHECKING:
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


def cpu_has_bf16() -> bool:
    """Whether torch's oneDNN backend runs bfloat16 natively on this CPU."""
    import torch

    mkldnn = torch.backends.mkldnn
    return bool(mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def train_in_bf16(trainer: "nnUNetTrainer") -> None:
    """Replace the trainer's train_step with one that runs the network in bf16, channels-last
    (channels_last_3d for a 3d configuration); the network is converted once, after nnU-Net
    builds (or restores) it."""
    import torch

    start = trainer.on_train_start
    spatial_axes = len(trainer.configuration_manager.patch_size)
    layout = torch.channels_last_3d if spatial_axes == 3 else torch.channels_last

    def on_train_start() -> None:
        start()
        trainer.network.to(memory_format=layout)

    def train_step(batch: dict) -> dict:
        data = batch["data"].to(trainer.device).contiguous(memory_format=layout)
        target = batch["target"]
        if isinstance(target, list):
            target = [part.to(trainer.device) for part in target]
        else:
            target = target.to(trainer.device)
        trainer.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output = trainer.network(data)
        output = [o.float() for o in output] if isinstance(output, list | tuple) else output.float()
        loss = trainer.loss(output, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainer.network.parameters(), 12)
        trainer.optimizer.step()
        return {"loss": loss.detach().cpu().numpy()}

    trainer.on_train_start = on_train_start
    trainer.train_step = train_step


def scan_thread_pools_once() -> None:
    """nnU-Net's loader calls threadpoolctl.threadpool_limits(limits=1) for every batch, which
    re-scans the loaded libraries each time; one controller scanned once limits them the same way
    (every library is loaded before the first batch)."""
    from nnunetv2.training.dataloading import data_loader
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    data_loader.threadpool_limits = controller.limit


def use_adamw(trainer: "nnUNetTrainer") -> None:
    """Train with AdamW (amsgrad) and nnU-Net's poly schedule, as nnU-Net's own
    nnUNetTrainerAdam does; set before initialize(), which builds the optimizer."""
    import torch
    from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler

    def configure_optimizers() -> tuple:
        optimizer = torch.optim.AdamW(
            trainer.network.parameters(),
            lr=trainer.initial_lr,
            weight_decay=trainer.weight_decay,
            amsgrad=True,
            fused=True,
        )
        return optimizer, PolyLRScheduler(optimizer, trainer.initial_lr, trainer.num_epochs)

    trainer.configure_optimizers = configure_optimizers


REPORTED_LOGS = (
    "train_losses",
    "val_losses",
    "dice_per_class_or_region",
    "ema_fg_dice",
    "epoch_start_timestamps",
    "epoch_end_timestamps",
)


def report_each_epoch(trainer: "nnUNetTrainer", fold: int, listener: EpochListener) -> None:
    """After nnU-Net ends each epoch (logged, checkpointed), hand its EpochReport to `listener`;
    call after a resumed trainer loaded its checkpoint, so the pace counts this process only."""
    end_epoch, first_epoch = trainer.on_epoch_end, trainer.current_epoch
    labels = trainer.dataset_json["labels"]
    classes = [name for name, value in sorted(labels.items(), key=lambda kv: kv[1]) if value != 0]

    def on_epoch_end() -> None:
        end_epoch()
        history = {key: trainer.logger.get_value(key, None) for key in REPORTED_LOGS}
        listener(epoch_report(history, fold, trainer.num_epochs, first_epoch, classes, time.time()))

    trainer.on_epoch_end = on_epoch_end


# The key under which checkpoints carry the random states: inside nnU-Net's logging entry, which
# nnU-Net saves and restores whole, so the states are written in the same file, at the same moment.
RANDOM_STATE_KEY = "cmrbias_random_state"


def random_state() -> dict[str, Any]:
    """Every generator a CPU or CUDA training draws from: Python's `random`, NumPy's global
    generator (nnU-Net's loader draws its cases and crops from it, the augmentation its
    parameters) and torch's CPU and CUDA generators."""
    import torch

    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: dict[str, Any]) -> None:
    """Set every generator to a `random_state()`; its tensors may have been loaded on a GPU."""
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["torch_cuda"]])


def carry_random_state(trainer: "nnUNetTrainer") -> None:
    """Save the random state in every checkpoint; after loading one, restore its state once
    on_train_start() has built and primed the data loaders (priming draws a batch each), so the
    next epoch draws what it would have drawn had the training not stopped. Call before
    load_checkpoint()."""
    logger, saved = trainer.logger, {}
    get_checkpoint, load_checkpoint = logger.get_checkpoint, logger.load_checkpoint
    start = trainer.on_train_start

    def checkpoint_with_state() -> dict:
        return {**get_checkpoint(), RANDOM_STATE_KEY: random_state()}

    def load_without_state(checkpoint: dict) -> None:
        logged = dict(checkpoint)
        state = logged.pop(RANDOM_STATE_KEY, None)
        if state is not None:
            saved["state"] = state
        load_checkpoint(logged)

    def on_train_start() -> None:
        start()
        if "state" in saved:
            restore_random_state(saved.pop("state"))

    logger.get_checkpoint = checkpoint_with_state
    logger.load_checkpoint = load_without_state
    trainer.on_train_start = on_train_start


def seed_augmentation_workers(seed: int) -> None:
    """Make nnU-Net's trainers start their augmentation workers with seeds drawn from `seed`
    (nnU-Net passes `seeds=None`: each worker reseeds from the OS). Seeded workers draw the same
    batches, but with two or more a shared queue hands them over in the order they finish, so the
    training still differs between runs; one worker gives a reproducible stream."""
    from nnunetv2.training.nnUNetTrainer import nnUNetTrainer as trainer_module

    # nnU-Net's own class, subclassed once even when one process trains several models; a class,
    # since nnU-Net also tests its loaders with isinstance against this name.
    current = trainer_module.NonDetMultiThreadedAugmenter
    augmenter = getattr(current, "nnunet_class", current)
    seeds = np.random.default_rng(seed)

    class SeededAugmenter(augmenter):
        nnunet_class = augmenter

        def __init__(self, **kwargs: Any) -> None:  # nnU-Net passes every argument by name
            workers = kwargs["num_processes"]
            kwargs["seeds"] = [int(s) for s in seeds.integers(0, 2**31 - 1, workers)]
            super().__init__(**kwargs)

    trainer_module.NonDetMultiThreadedAugmenter = SeededAugmenter
