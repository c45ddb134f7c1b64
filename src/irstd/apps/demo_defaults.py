"""The demo's defaults that ``irstd demo --help`` shows, in a module without torch."""

__all__ = ["DEMO_WEIGHTS"]

#: the shipped weights the demo runs: SGEM-UNet-S trained on generated scenes (docs/weights.md)
DEMO_WEIGHTS = "sgem_unet_s.synth_d2560"
