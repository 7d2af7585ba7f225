"""One check of a torch device argument, before any work: a typo or a missing GPU fails at once."""

from __future__ import annotations

import torch

#: Device types transferlab runs on (``cuda`` and ``mps`` when the machine has them).
DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(device, *, here: bool = True, fix: str = "device='cpu'") -> str:
    """Check that ``device`` names a torch device that is usable here; return it as a string.

    Called by every entry point that takes ``device`` (and the CLI), so that an
    unknown name or a GPU that is not there fails before anything is built,
    read or written.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    here : bool, default True
        Whether the work runs on this machine: then a CUDA or MPS device must be
        available here. ``False`` (jobs sent to a Ray cluster) checks the name only.
    fix : str, default "device='cpu'"
        How the caller's user asks for the CPU instead; the CLI passes ``"--device cpu"``.

    Returns
    -------
    str
        ``device`` as torch spells it (``torch.device(device)``'s string).

    Raises
    ------
    ValueError
        If ``device`` is not a torch device string, is of a type transferlab does
        not run on, or names a CUDA or MPS device this machine does not have.

    Examples
    --------
    >>> check_device("cpu")
    'cpu'
    """
    if not isinstance(device, (str, torch.device)) or isinstance(device, bool):
        raise ValueError(f"device must be a string such as 'cpu' or 'cuda'; got {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(
            f"device {str(device)!r} is not a torch device; use one of {', '.join(DEVICE_TYPES)} or cuda:N"
        ) from None
    if parsed.type not in DEVICE_TYPES:
        raise ValueError(f"device {str(device)!r} is not supported; use one of {', '.join(DEVICE_TYPES)} or cuda:N")
    if not here:
        return str(parsed)
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} was asked for but CUDA is not available here; use {fix}")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(
                f"device {str(device)!r} was asked for but this machine has {count} CUDA device(s) "
                f"(cuda:0 to cuda:{count - 1})"
            )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} was asked for but MPS is not available here; use {fix}")
    return str(parsed)
