"""The layer system: ``Module``, the layers, ``no_grad`` and gradient clipping (array API only).

Their public names are re-exported from ``portable_nn``.
"""
