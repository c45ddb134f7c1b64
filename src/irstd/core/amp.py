"""The values of every ``amp`` option, in a module without torch: command options show them
(``irstd <cmd> --help`` loads no torch); :mod:`.device` resolves them to autocast dtypes."""

__all__ = ["AMP_CHOICES"]

#: values of every ``amp`` option (config key, ``--amp`` flags, the predictor)
AMP_CHOICES = ("auto", "bf16", "fp16", "none")
