"""Building blocks of the networks, one module per kind; none registers a model.

* :mod:`.conv`: conv-BN-ReLU, the U-Net stage and up-conv, the basic residual block, resampling;
* :mod:`.attention`: ACM-family point-wise/global attention (with the pooled BatchNorm) and CBAM;
* :mod:`.resunet`: the deep stem, residual stages, FCN head and ResUNet of the ACM release;
* :mod:`.deform`: deformable convolution in pure PyTorch.

Import from the module that defines a block (``from .layers.conv import ConvBNAct``): this package
re-exports nothing, so every block has one import path.
"""
