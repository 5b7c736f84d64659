"""The d2l LeNet application built on unisched: the data
(:mod:`~unisched.app.data`), the shared initial weights
(:mod:`~unisched.app.lenet`), the one training loop
(:mod:`~unisched.app.training`), cross-framework comparison
(:mod:`~unisched.app.compare`), the chapter runner and its report
(:mod:`~unisched.app.chapter`, :mod:`~unisched.app.report`) and the
command line (:mod:`~unisched.app.cli`).

Everything here is numpy only; each framework's part of a run is in
``unisched.backends.<framework>``.
"""
