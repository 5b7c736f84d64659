"""PyTorch backend: :func:`bind` a unisched schedule to a
``torch.optim`` optimizer (:class:`LRScheduler`, a real PyTorch scheduler),
convert PyTorch's own schedulers (:func:`from_native`), and train the d2l
LeNet (:func:`train_lenet`, :func:`lr_find`, :func:`fit_one_cycle`).

Importing this package imports torch; ``unisched`` itself never does.
"""
from .adapter import STATE_FORMAT, LRScheduler, bind
from .lenet import TorchTrainer, fit_one_cycle, lr_find, train_lenet
from .native import from_native

__all__ = ["LRScheduler", "bind", "from_native", "STATE_FORMAT",
           "train_lenet", "lr_find", "fit_one_cycle", "TorchTrainer"]
