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
Use inside a fresh training process (lib.nnunet.isolation), which imports torch.
"""

import time
from typing import TYPE_CHECKING

from cmrbias_dagster.lib.nnunet.epoch_reports import EpochListener, epoch_report

if TYPE_CHECKING:
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


def cpu_has_bf16() -> bool:
    """Whether torch's oneDNN backend runs bfloat16 natively on this CPU."""
    import torch

    mkldnn = torch.backends.mkldnn
    return bool(mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def train_in_bf16(trainer: "nnUNetTrainer") -> None:
    """Replace the trainer's train_step with one that runs the network in bf16, channels-last;
    the network is converted once, after nnU-Net builds (or restores) it."""
    import torch

    start = trainer.on_train_start

    def on_train_start() -> None:
        start()
        trainer.network.to(memory_format=torch.channels_last)

    def train_step(batch: dict) -> dict:
        data = batch["data"].to(trainer.device).contiguous(memory_format=torch.channels_last)
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
