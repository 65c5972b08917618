"""Training progress of a network: :class:`EpochProgress`, a skorch callback."""

from __future__ import annotations

import sys

from skorch.callbacks import Callback

__all__ = ["EpochProgress"]


class EpochProgress(Callback):
    """A skorch callback showing training progress as a tqdm bar over epochs.

    One bar per fit (so one per ensemble member), with the last training
    and validation loss and the training speed in cubes (training clusters)
    per second; removed when the fit ends. Holds no state between fits, so a
    network carrying it can be saved with :mod:`skcluster.persist`. (Files
    written before it moved here name it ``skcluster.demo:EpochProgress``;
    they load as this class.)

    Parameters
    ----------
    desc : str, default="CNN epochs"
        Label of the bar.
    """

    def __init__(self, desc="CNN epochs"):
        self.desc = desc

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=int(net.max_epochs), desc=self.desc, unit="epoch", leave=False,
                         file=sys.stderr)

    def on_epoch_end(self, net, **kwargs):
        bar = getattr(self, "_bar", None)
        if bar is None:
            return
        bar.set_postfix(epoch_summary(net.history[-1]), refresh=False)
        bar.update(1)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        bar = self.__dict__.pop("_bar", None)
        if bar is not None:
            bar.close()


def epoch_summary(row):
    """The losses and training cubes per second of one epoch's history ``row`` (texts by label)."""
    post = {}
    for key, label in (("train_loss", "train"), ("valid_loss", "valid")):
        if key in row:
            post[label] = f"{row[key]:.3f}"
    cubes = sum(int(b.get("train_batch_size", 0)) for b in row.get("batches", ()))
    seconds = row.get("dur")
    if cubes and seconds:
        post["cubes/s"] = f"{cubes / seconds:.0f}"
    return post
