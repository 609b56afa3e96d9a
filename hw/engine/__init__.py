"""The GEMM engine (:class:`GemmEngine`) and the components it is wired from:

* :mod:`.command`: :class:`CommandRegister`, a command's shape and output parameters;
* :mod:`.loaders`: :class:`TileLoader` (operand streams into buffers), :class:`WeightTileGate`;
* :mod:`.sequencer`: one sequencer per dataflow, issuing beats to the grid;
* :mod:`.partial_sums`: :class:`PassSums`, :class:`RowSums`, exact sums across K;
* :mod:`.activation`: :class:`TableLoader` and the programmable activation table after the
  requantizer (``EngineConfig(activation_table=True)``);
* :mod:`.gemm`: :class:`GemmEngine`, which only wires them (with the grid, the channel table,
  the accumulator FIFO and the requantizer).
"""

from ..config import EngineConfig
from .activation import TABLE_LATENCY, TableLoader
from .command import MAX_M_TILES, CommandRegister
from .gemm import EngineTiming, GemmEngine, engine_layouts, engine_timing, requantizer_config
from .loaders import TileLoader, WeightTileGate
from .partial_sums import PassSums, RowSums
from .sequencer import GRID_FEED_LATENCY, OutputStationarySequencer, WeightStationarySequencer

__all__ = [
    "GRID_FEED_LATENCY", "MAX_M_TILES", "TABLE_LATENCY", "CommandRegister", "EngineConfig",
    "EngineTiming", "GemmEngine", "OutputStationarySequencer", "PassSums", "RowSums",
    "TableLoader", "TileLoader", "WeightStationarySequencer", "WeightTileGate",
    "engine_layouts", "engine_timing", "requantizer_config",
]
