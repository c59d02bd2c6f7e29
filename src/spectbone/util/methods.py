"""Display names of the compared methods, shared by inference, tables and figures."""

DISPLAY = {"noisy": "Noisy", "bm3d": "BM3D", "bm3d_anscombe": "BM3D (Anscombe, extra)", "dncnn": "DnCNN",
           "redcnn": "RED-CNN", "wgan": "WGAN", "emanet": "EMANet"}


def display_name(method: str) -> str:
    """Human name of a method key; every EMANet variant is shown as EMANet."""
    return DISPLAY.get(method, "EMANet")
