"""Graph nodes for weights kept on their source grid (:class:`~confroute.modelkit.grid.SourceGrid`).

A matmul is ``MatMulNBits`` over the codes with MatMulNBits' default zero point (no zero-point input: the
fast kernels), plus, for grids with offsets, ``blocksum(x) @ offsets^T``: ``Reshape`` + ``ReduceSum`` of
the input once per input tensor and block size (q/k/v and gate/up share theirs), a small ``MatMul`` and
an ``Add``. An embedding table is looked up with ``GatherBlockQuantized`` over 8-bit codes (4-bit codes
move to 8 bits exactly; the table is memory-mapped and only the rows looked up are read), plus the
gathered offsets.
"""

from __future__ import annotations

import numpy as np

from confroute.modelkit.graph import MS_DOMAIN, GraphBuilder
from confroute.modelkit.grid import SourceGrid


class GridMatMul:
    """Emits ``x @ rows^T`` for grids; remembers each input's block sums."""

    def __init__(self, gb: GraphBuilder, accuracy_level: int) -> None:
        self.gb = gb
        self.accuracy_level = accuracy_level
        self._blocksums: dict[tuple[str, int], str] = {}

    def __call__(self, x: str, grid: SourceGrid, name: str, *, rank: int = 3, output: str | None = None) -> str:
        gb = self.gb
        codes = gb.init(f"{name}.q", grid.packed())
        scales = gb.init(f"{name}.scales", np.ascontiguousarray(grid.scales.reshape(-1)))
        plain = output if grid.offsets is None and output else gb.fresh("matmulnbits")
        y = gb.op("MatMulNBits", [x, codes, scales], domain=MS_DOMAIN, K=grid.in_features, N=grid.rows,
                  bits=grid.bits, block_size=grid.block, accuracy_level=self.accuracy_level, outputs=[plain])[0]
        if grid.offsets is None:
            return y
        offsets = gb.init(f"{name}.offsets", np.ascontiguousarray(grid.offsets.T))
        correction = gb.op1("MatMul", [self.blocksum(x, grid, rank), offsets])
        return gb.op("Add", [y, correction], outputs=[output or gb.fresh("add")])[0]

    def blocksum(self, x: str, grid: SourceGrid, rank: int) -> str:
        """``x`` [..., K] summed over each block of the grid along K: [..., K / block]."""
        key = (x, grid.block)
        if key not in self._blocksums:
            shape = [0] * (rank - 1) + [grid.n_blocks, grid.block]
            blocks = self.gb.op1("Reshape", [x, self.gb.const(shape)])
            self._blocksums[key] = self.gb.op1("ReduceSum", [blocks, self.gb.const([-1])], keepdims=0)
        return self._blocksums[key]


def grid_embed(gb: GraphBuilder, grid: SourceGrid, ids: str, hidden_size: int) -> str:
    """Rows of an embedding table [V, H] on its grid for ``ids`` [B, S]: [B, S, H] float32."""
    table = grid.as_8bit()
    codes = gb.init("embed.rows", table.codes.reshape(table.rows, -1))
    scales = gb.init("embed.scales2d", table.scales)
    # no zero points: GatherBlockQuantized's default for 8 bits is 128, the grid's centre
    rows = gb.op1("GatherBlockQuantized", [codes, ids, scales], domain=MS_DOMAIN, gather_axis=0, quantize_axis=1,
                  block_size=table.block, bits=8)
    if table.offsets is not None:
        blocks = gb.op1("Reshape", [rows, gb.const([0, 0, table.n_blocks, table.block])])
        offsets = gb.op1("Gather", [gb.init("embed.offsets", table.offsets), ids], axis=0)
        shifted = gb.op1("Add", [blocks, gb.op1("Unsqueeze", [offsets, gb.const([-1])])])
        rows = gb.op1("Reshape", [shifted, gb.const([0, 0, table.in_features])])
    if table.in_features == hidden_size:
        return rows
    return gb.op1("Slice", [rows, gb.const([0]), gb.const([hidden_size]), gb.const([2])])
