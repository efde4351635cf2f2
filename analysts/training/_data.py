"""Training samples as windows over one matrix of feature rows.

Windows are not materialised: a sample is the index of its *last* row, and a batch is
gathered as ``x[end - window + 1 : end + 1]`` on the fly. Twenty stocks x 30 years x a
20-bar window would otherwise be hundreds of megabytes of copies of the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True, eq=False)
class SampleSet:
    """``x``: (rows, features) float32; ``ends``: (samples,) int64 row of each window's
    last bar; ``y``: (samples,) float32 labels or None; ``window``: rows per sample."""

    x: torch.Tensor
    ends: torch.Tensor
    y: torch.Tensor | None
    window: int

    @classmethod
    def from_numpy(cls, x: np.ndarray, ends: np.ndarray, y: np.ndarray | None,
                   window: int) -> SampleSet:
        return cls(
            torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(ends, dtype=np.int64)),
            None if y is None else torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)),
            int(window),
        )

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    def to(self, device: torch.device) -> SampleSet:
        return SampleSet(self.x.to(device), self.ends.to(device),
                         None if self.y is None else self.y.to(device), self.window)

    def inputs(self, index: torch.Tensor) -> torch.Tensor:
        """(batch, window, features) windows for the samples at ``index``."""
        offsets = torch.arange(-self.window + 1, 1, device=self.ends.device)
        rows = self.ends[index].unsqueeze(1) + offsets
        return self.x[rows]

    def labels(self, index: torch.Tensor) -> torch.Tensor:
        if self.y is None:
            raise ValueError("this sample set has no labels")
        return self.y[index]
